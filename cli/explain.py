"""`tfrnn explain`: which words moved a run's predictions (`tfrnn.explain`)."""

import io
import json
import sys
from pathlib import Path

import click
from tfrnn_cli.main import UserError, reports_user_errors

from tfrnn import choices

EXPLAIN_EXAMPLES = """
\b
Examples:
  tfrnn explain runs/quickstart "What a lovely film."
  tfrnn explain runs/quickstart --text-file reviews.txt --html explained.html
  tfrnn explain runs/quickstart "Dull and far too long." --method occlusion --json
  tfrnn explain runs/bert "Not bad at all." --steps 200 --baseline zeros
"""


def _named_texts(texts, text_file):
    """(name, text) for each TEXT ("TEXT 2") and each line of the file ("reviews.txt:3")."""
    from tfrnn.data.readers import decode_utf8

    named = [(f"TEXT {i}", text) for i, text in enumerate(texts, 1)]
    if text_file:  # bad UTF-8 is reported at its line and column
        name = getattr(text_file, "name", "<stdin>")
        content = decode_utf8(text_file.read(), name)
        lines = [line.rstrip("\n") for line in io.StringIO(content, newline=None)]
        named += [(f"{name}:{i}", line) for i, line in enumerate(lines, 1)]
    if not named:
        raise UserError("give at least one TEXT or --text-file")
    for name, text in named:
        if not text.strip():
            raise UserError(f"{name}: empty text; nothing to explain")
    return named


@click.command(epilog=EXPLAIN_EXAMPLES)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("texts", nargs=-1, metavar="[TEXT]...")
@click.option("--text-file", type=click.File("rb"), help="One text per line, UTF-8 ('-' for stdin).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write the explanations as a page.")
@click.option(
    "--method",
    type=click.Choice(list(choices.EXPLAIN_METHODS)),
    default="ig",
    show_default=True,
    help="Integrated gradients, or leave-one-word-out occlusion.",
)
@click.option("--steps", type=click.IntRange(min=1), default=50, show_default=True, help="Integrated gradients' steps.")
@click.option(
    "--baseline",
    type=click.Choice(list(choices.EXPLAIN_BASELINES)),
    default="pad",
    show_default=True,
    help="Integrated gradients' baseline: the padding embedding, or zeros.",
)
@reports_user_errors
def explain(run_dir, texts, text_file, as_json, html_path, method, steps, baseline):
    """Show which words of each TEXT (or line of --text-file) moved the run's prediction.

    One attribution per word the model saw (after cleaning and truncation; a BERT's word pieces
    merged): positive for the predicted label, negative against it. Integrated gradients report
    their completeness (the attributions sum to f(x) - f(baseline)) and warn when it is off by
    more than 5%.
    """
    from tfrnn.explain import explain_texts, render_text, write_html_page
    from tfrnn.runs import load_run

    named = _named_texts(texts, text_file)
    if html_path and not Path(html_path).resolve().parent.is_dir():
        raise UserError(f"--html {html_path}: no such folder {Path(html_path).resolve().parent}")
    run = load_run(run_dir)
    explanations = explain_texts(
        run.model, [text for _, text in named], run.label_names, method=method, steps=steps, baseline=baseline
    )
    color = not as_json and sys.stdout.isatty()
    for i, explanation in enumerate(explanations):
        if as_json:
            click.echo(json.dumps(explanation.as_dict(), ensure_ascii=False))
        else:
            click.echo(("\n" if i else "") + render_text(explanation, color=color))
    if html_path:
        write_html_page(html_path, explanations, title=f"tfrnn explain {run.paths.root.name}")
        if not as_json:
            click.echo(f"\nwritten to {html_path}")

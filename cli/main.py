"""`tfrnn`: thin click commands over tfrnn's library functions.

Each command parses its flags into a config (or arguments), calls one library function and
prints the result. Errors the user can fix (TfrnnError) print as one line and exit with 2.
Heavy imports (TensorFlow) happen inside the commands, so `--help` stays instant.
"""

import contextlib
import functools
import io
import json
import os
import sys

import click

from tfrnn import __version__, choices

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _native_stderr_silenced():
    """Silences file descriptor 2 for a moment: TensorFlow 2.21's native start-up logs
    (oneDNN, CUDA probing) ignore TF_CPP_MIN_LOG_LEVEL. Python exceptions still surface."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _start_tensorflow():
    with _native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()


class UserError(click.ClickException):
    """A bad input, reported as `Error: <message>` with exit status 2."""

    exit_code = 2


@contextlib.contextmanager
def _one_line_usage_errors():
    try:
        yield
    except getattr(click.exceptions, "NoArgsIsHelpError", ()):  # plain `tfrnn` shows the help
        raise
    except click.UsageError as error:  # click would print the usage text above it
        raise UserError(error.format_message()) from None


class OneLineErrorGroup(click.Group):
    """A group whose usage errors (bad flag values, unknown commands or options, missing
    arguments) print as one `Error:` line, like tfrnn's own errors."""

    def make_context(self, *args, **kwargs):
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _one_line_usage_errors():
            return super().invoke(ctx)


def reports_user_errors(command):
    """Turns tfrnn's input errors and OS errors (a path that is a file, no permission) into
    UserError: one line, exit status 2, no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        _start_tensorflow()
        from tfrnn.errors import TfrnnError

        try:
            return command(*args, **kwargs)
        except TfrnnError as error:
            raise UserError(str(error)) from None
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            raise UserError(f"{where}{error.strerror or error}") from None

    return wrapper


def _flag_overrides(**flags):
    """Shortcut flags as dotted overrides; flags left unset are skipped."""
    keys = {
        "source": "data.source",
        "data_path": "data.path",
        "test_path": "data.test_path",
        "data_dir": "data.data_dir",
        "model_kind": "model.kind",
        "checkpoint": "model.bert.checkpoint",
        "cell": "model.rnn.cell",
        "strategy": "train.strategy",
        "epochs": "train.epochs",
        "batch_size": "data.batch_size",
        "output_dir": "output_dir",
        "name": "run_name",
    }
    overrides = [f"{keys[k]}={v}" for k, v in flags.items() if v is not None and k != "devices"]
    if flags.get("devices"):
        overrides.append(f"train.devices=[{flags['devices']}]")
    return overrides


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="tfrnn")
def cli():
    """tfrnn: recurrent text classifiers on Keras 3 / TensorFlow, from the shell.

    \b
    Quickstart (offline, about a minute on 2 CPU cores):
      tfrnn train --name quickstart
      tfrnn predict runs/quickstart "A warm, funny film with a great cast."
      tfrnn export runs/quickstart --to saved_models/sentiment
    """


TRAIN_EXAMPLES = """
\b
Examples:
  tfrnn train                                   # embedded movie reviews, BiLSTM
  tfrnn train --cell gru --epochs 5 model.rnn.units=128
  tfrnn train -c benchmarks/configs/imdb_bilstm.yaml --source aclimdb --data ~/aclImdb
  tfrnn train --source file --data reviews.csv data.text_column=review data.label_column=stars
  tfrnn train --source file --data chnsenticorp.csv model.rnn.tokenizer=char
  tfrnn train --resume runs/20260101-120000-lstm  # continue an interrupted run
  tfrnn train --model bert --checkpoint ./all-MiniLM-L6-v2 --source file --data sst2.tsv
  tfrnn train --model bert --strategy mirrored --devices /gpu:0,/gpu:1
"""


@cli.command(epilog=TRAIN_EXAMPLES)
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--source", type=click.Choice(list(choices.SOURCES)), help="Data source.")
@click.option("--data", "data_path", help="aclImdb folder or CSV/TSV/JSONL file (data.path).")
@click.option("--data-dir", "data_dir", help="TFDS data directory for --source imdb (data.data_dir).")
@click.option("--test-data", "test_path", help="Evaluation file for --source file (data.test_path).")
@click.option("--model", "model_kind", type=click.Choice(list(choices.KINDS)), help="Model kind (model.kind).")
@click.option(
    "--checkpoint",
    help="BERT checkpoint (model.bert.checkpoint): Hugging Face-format folder, hf://..., kaggle://... or preset.",
)
@click.option("--cell", type=click.Choice(list(choices.CELLS)), help="Recurrent cell (model.rnn.cell).")
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Global batch size.")
@click.option(
    "--strategy",
    type=click.Choice(list(choices.STRATEGIES)),
    help="tf.distribute strategy (multi-worker reads TF_CONFIG).",
)
@click.option("--devices", help="Comma-separated devices for --strategy, e.g. /gpu:0,/gpu:1.")
@click.option("--output-dir", help="Parent folder of run directories (default runs).")
@click.option("--name", help="Run directory name (default: time and cell).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="Continue an interrupted run.")
@reports_user_errors
def train(overrides, config_path, resume_dir, **flags):
    """Train a text classifier; every output lands in one run directory.

    Configuration comes from the defaults, then --config, then the shortcut flags, then
    KEY=VALUE overrides (dotted, e.g. model.rnn.units=128 train.learning_rate=0.001). Only the
    section of the chosen model kind may be set (model.rnn.*, model.feedforward.* or model.bert.*).
    """
    from pathlib import Path

    from tfrnn.config import load_config
    from tfrnn.training.train import train as train_run

    if resume_dir:
        run = Path(resume_dir)
        config_path = config_path or run / "config.yaml"
        flags.update(output_dir=str(run.parent), name=run.name)
    config = load_config(config_path, [*_flag_overrides(**flags), *overrides])
    result = train_run(config, resume=bool(resume_dir), log=click.echo)
    if (result.run_dir / "metrics.json").is_file():  # a non-chief worker keeps nothing
        click.echo(f"metrics: {result.run_dir / 'metrics.json'}")


@cli.command(
    epilog="\b\nExamples:\n  tfrnn evaluate runs/quickstart\n  tfrnn evaluate runs/quickstart --data reviews.csv"
)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--data", "data_path", help="A labelled CSV/TSV/JSONL file (default: the run's test split).")
@reports_user_errors
def evaluate(run_dir, overrides, data_path):
    """Evaluate a trained run: accuracy, F1, classification report, confusion matrix."""
    from tfrnn.training.inference import evaluate_run

    if data_path:
        overrides = ("data.source=file", f"data.test_path={data_path}", *overrides)
    result = evaluate_run(run_dir, overrides)
    click.echo(result["report"])
    click.echo(f"accuracy {result['accuracy']:.4f}  macro F1 {result['macro_f1']:.4f}  ({result['data']})")
    click.echo(f"written to {result['written_to']}")


@cli.command(
    epilog='\b\nExamples:\n  tfrnn predict runs/quickstart "What a lovely film."\n  tfrnn predict runs/quickstart --file reviews.txt --json'
)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("texts", nargs=-1)
@click.option("--file", "text_file", type=click.File("rb"), help="One text per line, UTF-8 ('-' for stdin).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@reports_user_errors
def predict(run_dir, texts, text_file, as_json):
    """Predict the label of each TEXT (or each line of --file)."""
    from tfrnn.data.readers import decode_utf8
    from tfrnn.runs import load_run

    if text_file:  # bad UTF-8 is reported at its line and column
        content = decode_utf8(text_file.read(), getattr(text_file, "name", "<stdin>"))
        texts = list(texts) + [line.rstrip("\n") for line in io.StringIO(content, newline=None)]
    if not texts:
        raise UserError("give at least one TEXT or --file")
    for prediction in load_run(run_dir).predict(texts):
        if as_json:
            click.echo(json.dumps(prediction, ensure_ascii=False))
        else:
            p = prediction["probabilities"][prediction["label"]]
            click.echo(f"{prediction['label']}\t{p:.3f}\t{prediction['text']}")


EXPORT_EXAMPLES = """
\b
Examples:
  tfrnn export runs/quickstart --to saved_models/sentiment
  tfrnn export runs/quickstart --to saved_models/sentiment --version 7
  tfrnn export runs/quickstart --to saved_models/sentiment --serving-config --batching
"""


@cli.command(epilog=EXPORT_EXAMPLES)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--to", "model_root", help="Model folder under the export root (default saved_models/<run name>).")
@click.option("--version", type=click.IntRange(min=1), help="Version number (default: the next one).")
@click.option("--serving-config", is_flag=True, help="Also write EXPORT_ROOT/models.config for TF Serving.")
@click.option("--serving-base", default="/models", show_default=True, help="Where TF Serving sees the export root.")
@click.option("--batching", is_flag=True, help="Also write EXPORT_ROOT/batching.config (TF Serving batching).")
@reports_user_errors
def export(run_dir, model_root, version, serving_config, serving_base, batching):
    """Export a run as a TF Serving SavedModel whose serving_default takes raw text."""
    from pathlib import Path

    from tfrnn.export import custom_ops, export_run
    from tfrnn.serving.tf_serving import write_batching_config, write_models_config

    model_root = model_root or str(Path("saved_models") / Path(run_dir).name)
    target = export_run(run_dir, model_root, version)
    click.echo(f"exported {target} (signature serving_default: text -> probabilities, label_id, label)")
    needed = custom_ops(target)
    if needed:
        click.echo(f"loading it needs TensorFlow Text's ops ({', '.join(needed)}): `import tensorflow_text`")
    if serving_config:
        click.echo(f"wrote {write_models_config(Path(model_root).parent, serving_base)}")
    if batching:
        click.echo(f"wrote {write_batching_config(Path(model_root).parent)}")


@cli.command(
    epilog='\b\nExamples:\n  tfrnn serve saved_models\n  curl -d \'{"instances": ["Great film"]}\' localhost:8501/v1/models/sentiment:predict'
)
@click.argument("export_root", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 to expose it).")
@click.option(
    "--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="Port (TF Serving's REST port)."
)
@click.option(
    "--max-request-mb", default=10, show_default=True, type=click.IntRange(min=1), help="Largest request body."
)
@reports_user_errors
def serve(export_root, host, port, max_request_mb):
    """Serve every model under EXPORT_ROOT with TF Serving's REST API (a development stand-in).

    The newest version of each model is served by default; new versions are picked up without a
    restart. For production, serve the same folder with TF Serving.
    """
    from tfrnn.serving.server import serve as run_server

    click.echo(f"serving {export_root} on http://{host}:{port}/v1/models/NAME (Ctrl-C stops)")
    run_server(export_root, host=host, port=port, max_request_bytes=max_request_mb * 2**20)


def main():
    cli(prog_name="tfrnn")


if __name__ == "__main__":
    sys.exit(main())

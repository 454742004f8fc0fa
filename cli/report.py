"""`tfrnn report`: a finished run as one self-contained page, RUN/report.html (`tfrnn.report`)."""

import click
from tfrnn_cli.main import reports_user_errors

REPORT_EXAMPLES = """
\b
Examples:
  tfrnn report runs/quickstart          # writes runs/quickstart/report.html
  tfrnn evaluate runs/quickstart --data reviews.csv && tfrnn report runs/quickstart
"""


@click.command(epilog=REPORT_EXAMPLES)
@click.argument("run_dir", type=click.Path(file_okay=False))
@reports_user_errors
def report(run_dir):
    """Write RUN_DIR/report.html: the run's config, data, training curves, confusion matrix,
    per-class report, its most confident errors with their attributions, and the evaluations of
    other data (`tfrnn evaluate`). One file, no network needed; `tfrnn train` writes it too.
    """
    from tfrnn.report import write_report

    write_report(run_dir, log=click.echo)  # report: RUN_DIR/report.html

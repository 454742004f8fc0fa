"""`tfrnn tune`: a hyperparameter search over `tfrnn train` runs (`tfrnn.tuning`)."""

import click
from tfrnn_cli.main import reports_user_errors

TUNE_EXAMPLES = """
\b
Examples:
  tfrnn tune -c space.yaml --trials 20              # results in tunes/space/
  tfrnn tune -c space.yaml --algorithm hyperband    # Hyperband's schedule, up to the base's train.epochs
  tfrnn tune -c space.yaml --resume                 # continue an interrupted search
  tfrnn train -c tunes/space/best.yaml              # the best trial's config
  tensorboard --logdir tunes/space/hparams          # the HParams dashboard

\b
space.yaml:
  base: imdb.yaml                  # a tfrnn train config, relative to this file (optional)
  overrides: [data.limit=5000]     # fixed dotted overrides (optional)
  algorithm: random                # random, bayesian or hyperband
  objective: val_accuracy          # or val_loss
  trials: 10
  space:
    train.learning_rate: {min: 1.0e-4, max: 1.0e-2, sampling: log}
    model.rnn.units: {min: 32, max: 128, step: 32}
    model.rnn.cell: [lstm, gru]
"""


@click.command(epilog=TUNE_EXAMPLES)
@click.option(
    "-c", "--config", "space_path", required=True, type=click.Path(dir_okay=False), help="Search space YAML file."
)
@click.option("--trials", type=click.IntRange(min=1), help="Trials to run at most (overrides the file's).")
@click.option("--algorithm", help="random, bayesian or hyperband (overrides the file's).")
@click.option("--output-dir", help="The search's folder (default tunes/<space file name>).")
@click.option("--resume", is_flag=True, help="Continue the interrupted search in the output folder.")
@reports_user_errors
def tune(space_path, trials, algorithm, output_dir, resume):
    """Search hyperparameters: each trial is a tfrnn train run, in the search's trials/ folder.

    Writes results.csv and results.md (best first), best.yaml (for tfrnn train -c) and the
    HParams dashboard's data (hparams/) after every trial.
    """
    from tfrnn.tuning import tune as run_search

    run_search(space_path, trials=trials, algorithm=algorithm, output_dir=output_dir, resume=resume, log=click.echo)

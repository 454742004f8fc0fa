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
        "peft": "model.peft.method",
        "cell": "model.rnn.cell",
        "strategy": "train.strategy",
        "epochs": "train.epochs",
        "batch_size": "data.batch_size",
        "output_dir": "output_dir",
        "name": "run_name",
        "init_from": "init_from",
    }
    overrides = [f"{keys[k]}={v}" for k, v in flags.items() if v is not None and k != "devices"]
    if flags.get("devices"):
        overrides.append(f"train.devices=[{flags['devices']}]")
    return overrides


def _named_source(source, data_path, test_path):
    """The data source that --data and --test-data name (`tfrnn.data.sources.source_of`: a file
    is `file`, an aclImdb folder `aclimdb`; --test-data is a file), checked against --source;
    `source` when neither is given. So a user's data is never silently left unread."""
    from tfrnn.data.sources import source_of

    named = []  # (option, path, the source that reads it)
    if data_path is not None:
        named.append(("--data", data_path, source_of(data_path, "--data")))
    if test_path is not None:
        named.append(("--test-data", test_path, source_of(test_path, "--test-data", folders=False)))
    for option, path, implied in named:
        if source is not None and implied != source:
            what = "a file" if implied == "file" else "an aclImdb folder"
            raise UserError(f"--source {source} contradicts {option} {path}: {what}, read by --source {implied}")
    if len({implied for _, _, implied in named}) > 1:  # an aclImdb folder and a test file
        raise UserError(
            f"--test-data {test_path}: only with a file for --data; the aclImdb folder --data {data_path} "
            "has its own test split (test/pos, test/neg)"
        )
    return named[0][2] if named else source


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
  tfrnn train -c benchmarks/configs/imdb_bilstm.yaml --data ~/aclImdb    # an aclImdb folder
  tfrnn train --data reviews.csv data.text_column=review data.label_column=stars  # a file
  tfrnn train --data chnsenticorp.csv model.rnn.tokenizer=char
  tfrnn train --resume runs/20260101-120000-lstm  # continue an interrupted run
  tfrnn train --model bert --checkpoint ./all-MiniLM-L6-v2 --data sst2.tsv
  tfrnn train --model bert --checkpoint ./all-MiniLM-L6-v2 --peft lora model.peft.rank=8 --data sst2.tsv
  tfrnn train --model bert --strategy mirrored --devices /gpu:0,/gpu:1
  tfrnn train --init-from runs/imdb-lm --data train.csv   # ULMFiT on a tfrnn pretrain run
  tfrnn train train.adversarial.method=fgm train.adversarial.epsilon=0.5   # adversarial training
  tfrnn train data.augment.deletion=0.1 data.augment.swap=0.1 train.label_smoothing=0.1
"""

PRETRAIN_EXAMPLES = """
\b
Examples:
  tfrnn pretrain --name lm                       # the embedded movie reviews' text, AWD-LSTM
  tfrnn pretrain --data ../shared/data/imdb/unsup.csv --data train.csv model.rnn.layers=3
  tfrnn pretrain --data corpus/ data.lines=true  # a folder of .txt files, a document per line
  tfrnn pretrain --init-from runs/lm --data train.csv   # fine-tune the LM on the task's text
  tfrnn pretrain --model bert --data unsup.csv model.bert.layers=4 model.bert.hidden_dim=256
  tfrnn pretrain --model bert --checkpoint ./all-MiniLM-L6-v2 --data unsup.csv   # domain-adaptive
  tfrnn train --init-from runs/lm --data train.csv
"""


@cli.command(epilog=TRAIN_EXAMPLES)
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--source", type=click.Choice(list(choices.SOURCES)), help="Data source.")
@click.option(
    "--data", "data_path", help="CSV/TSV/JSONL file (--source file) or aclImdb folder (--source aclimdb): data.path."
)
@click.option("--data-dir", "data_dir", help="TFDS data directory for --source imdb (data.data_dir).")
@click.option("--test-data", "test_path", help="Evaluation file (--source file): data.test_path.")
@click.option("--model", "model_kind", type=click.Choice(list(choices.KINDS)), help="Model kind (model.kind).")
@click.option(
    "--checkpoint",
    help="BERT checkpoint (model.bert.checkpoint): Hugging Face-format folder, hf://..., kaggle://... or preset.",
)
@click.option(
    "--peft",
    type=click.Choice(list(choices.PEFT_METHODS)),
    help="Parameter-efficient fine-tuning of the checkpoint (model.peft.method; model.peft.rank=8 ...).",
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
@click.option(
    "--init-from",
    "init_from",
    help="A tfrnn pretrain run: build the classifier on its encoder and vocabulary (ULMFiT for an RNN).",
)
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
    flags["source"] = _named_source(flags["source"], flags["data_path"], flags["test_path"])
    config = load_config(config_path, [*_flag_overrides(**flags), *overrides])
    result = train_run(config, resume=bool(resume_dir), log=click.echo)
    if (result.run_dir / "metrics.json").is_file():  # a non-chief worker keeps nothing
        click.echo(f"metrics: {result.run_dir / 'metrics.json'}")


@cli.command(epilog=PRETRAIN_EXAMPLES)
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option(
    "--data",
    "sources",
    multiple=True,
    help="Text to learn from, repeatable (data.sources): a CSV/TSV/JSONL file (its data.text_column), a "
    "plain-text file, a folder of .txt files, 'imdb' (TFDS) or 'embedded'.",
)
@click.option("--data-dir", "data_dir", help="TFDS data directory for --data imdb (data.data_dir).")
@click.option(
    "--model", "model_kind", type=click.Choice(list(choices.PRETRAIN_KINDS)), help="rnn (AWD-LSTM) or bert (masked LM)."
)
@click.option("--checkpoint", help="BERT: continue pretraining this checkpoint (model.bert.checkpoint).")
@click.option("--init-from", "init_from", help="A tfrnn pretrain run to go on from (its weights and vocabulary).")
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Global batch size.")
@click.option("--strategy", type=click.Choice(list(choices.STRATEGIES)), help="tf.distribute strategy.")
@click.option("--devices", help="Comma-separated devices for --strategy.")
@click.option("--output-dir", help="Parent folder of run directories (default runs).")
@click.option("--name", help="Run directory name (default: time and model).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), help="Continue an interrupted run.")
@reports_user_errors
def pretrain(overrides, config_path, sources, resume_dir, **flags):
    """Pretrain a language model on unlabelled text; every output lands in one run directory.

    Configuration as for `tfrnn train` (defaults, --config, flags, KEY=VALUE overrides); the
    model sections are model.rnn.* (AWD-LSTM) and model.bert.* (masked LM). Fine-tune a
    classifier on the result with `tfrnn train --init-from RUN`.
    """
    from pathlib import Path

    from tfrnn.config import load_config
    from tfrnn.training.pretrain import pretrain as pretrain_run

    if resume_dir:
        run = Path(resume_dir)
        config_path = config_path or run / "config.yaml"
        flags.update(output_dir=str(run.parent), name=run.name)
    given = [*_flag_overrides(**flags)]
    if sources:
        given.append("data.sources=[" + ",".join(json.dumps(source) for source in sources) + "]")
    config = load_config(config_path, [*given, *overrides], task="pretrain")
    result = pretrain_run(config, resume=bool(resume_dir), log=click.echo)
    click.echo(f"metrics: {result.run_dir / 'metrics.json'}")


EVALUATE_EXAMPLES = """
\b
Examples:
  tfrnn evaluate runs/quickstart
  tfrnn evaluate runs/quickstart --data reviews.csv
  tfrnn evaluate runs/imdb --data ~/aclImdb          # its test split
  tfrnn evaluate saved_models/ensemble-imdb          # an ensemble export: it and each member
  tfrnn evaluate saved_models/ensemble-imdb/2 --data reviews.csv --to ensemble.json
"""


@cli.command(epilog=EVALUATE_EXAMPLES)
@click.argument("run_dir", metavar="RUN_DIR|ENSEMBLE", type=click.Path(file_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--data",
    "data_path",
    help="A labelled CSV/TSV/JSONL file, or an aclImdb folder (its test split); default: the run's test split.",
)
@click.option(
    "--to",
    "to",
    type=click.Path(dir_okay=False),
    help="The JSON file to write (default RUN_DIR/evaluations/<data>.json; for an ensemble "
    "MODEL/evaluations/<data>-v<version>.json, beside its versions).",
)
@reports_user_errors
def evaluate(run_dir, overrides, data_path, to):
    """Evaluate a trained run: accuracy, F1, classification report, confusion matrix.

    RUN_DIR may instead be an ensemble export (`tfrnn ensemble`; its model folder for the newest
    version, or a version folder): its data settings are the first member's, and the ensemble is
    reported beside each member, through the SavedModel's signatures.
    """
    from tfrnn.ensemble import ensemble_folder, evaluate_ensemble, evaluation_table
    from tfrnn.training.inference import evaluate_run

    if data_path:  # a file (its test_path), or an aclImdb folder (its test split)
        from tfrnn.data.sources import source_of

        source = source_of(data_path, "--data", split="test")
        key = "data.test_path" if source == "file" else "data.path"
        overrides = (f"data.source={source}", f"{key}={data_path}", *overrides)
    if ensemble_folder(run_dir) is not None:
        result = evaluate_ensemble(run_dir, overrides, to)
        click.echo(evaluation_table(result))
        click.echo(f"({result['data']}; {result['export']})")
    else:
        result = evaluate_run(run_dir, overrides, to=to)
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
  tfrnn export runs/sst2-lora runs/imdb-lora --to saved_models/tasks   (PEFT runs over one base:
      one signature each, serving_default = the first, the base weights stored once)
"""


@cli.command(epilog=EXPORT_EXAMPLES)
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...", type=click.Path(file_okay=False))
@click.option("--to", "model_root", help="Model folder under the export root (default saved_models/<run name>).")
@click.option("--version", type=click.IntRange(min=1), help="Version number (default: the next one).")
@click.option("--serving-config", is_flag=True, help="Also write EXPORT_ROOT/models.config for TF Serving.")
@click.option("--serving-base", default="/models", show_default=True, help="Where TF Serving sees the export root.")
@click.option("--batching", is_flag=True, help="Also write EXPORT_ROOT/batching.config (TF Serving batching).")
@reports_user_errors
def export(run_dirs, model_root, version, serving_config, serving_base, batching):
    """Export a run (or several PEFT runs over one base) as a TF Serving SavedModel whose
    signatures take raw text."""
    from pathlib import Path

    from tfrnn.export import custom_ops, export_runs, signature_names
    from tfrnn.files import folder_size

    model_root = model_root or str(Path("saved_models") / Path(run_dirs[0]).name)
    target = export_runs(list(run_dirs), model_root, version)
    names = ", ".join(signature_names(target))
    click.echo(
        f"exported {target} ({folder_size(target) / 2**20:.1f} MiB; signatures {names}: text -> probabilities, label_id, label)"
    )
    needed = custom_ops(target)
    if needed:
        click.echo(f"loading it needs TensorFlow Text's ops ({', '.join(needed)}): `import tensorflow_text`")
    from tfrnn.serving.tf_serving import write_batching_config, write_models_config

    if serving_config:
        click.echo(f"wrote {write_models_config(Path(model_root).parent, serving_base)}")
    if batching:
        click.echo(f"wrote {write_batching_config(Path(model_root).parent)}")


ENSEMBLE_EXAMPLES = """
\b
Examples:
  tfrnn ensemble runs/bilstm-1 runs/bilstm-2 runs/bilstm-3 --to saved_models/imdb-ensemble
  tfrnn ensemble runs/bilstm runs/minilm-lora --weights 0.4,0.6 --version 2
  tfrnn evaluate saved_models/ensemble-bilstm    # the ensemble beside each member
"""


@cli.command(epilog=ENSEMBLE_EXAMPLES)
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...", type=click.Path(file_okay=False))
@click.option(
    "--to", "model_root", help="Model folder under the export root (default saved_models/ensemble-<first run's name>)."
)
@click.option("--weights", help="One positive weight per run, comma-separated (0.5,0.3,0.2); default equal.")
@click.option("--version", type=click.IntRange(min=1), help="Version number (default: the next one).")
@reports_user_errors
def ensemble(run_dirs, model_root, weights, version):
    """Export finished runs as ONE TF Serving SavedModel whose serving_default averages their
    probabilities (weights normalised to sum 1).

    Each member keeps its own preprocessing (kinds may differ: RNN, feedforward, BERT, PEFT);
    their label sets must be the same (the order is the first run's). Each member also gets a
    signature named after its run directory, with its own probabilities, to compare.
    """
    from pathlib import Path

    from tfrnn.ensemble import export_ensemble, parse_weights
    from tfrnn.export import custom_ops, signature_names
    from tfrnn.files import folder_size

    model_root = model_root or str(Path("saved_models") / f"ensemble-{Path(run_dirs[0]).name}")
    target = export_ensemble(list(run_dirs), model_root, parse_weights(weights) if weights else None, version)
    click.echo(
        f"exported {target} ({folder_size(target) / 2**20:.1f} MiB; signatures {', '.join(signature_names(target))}: "
        "text -> probabilities, label_id, label)"
    )
    needed = custom_ops(target)
    if needed:
        click.echo(f"loading it needs TensorFlow Text's ops ({', '.join(needed)}): `import tensorflow_text`")


@cli.command(
    epilog="\b\nExamples:\n  tfrnn serve saved_models\n"
    "  tfrnn serve --model_config_file saved_models/models.config "
    "--batching_parameters_file saved_models/batching.config\n"
    '  curl -d \'{"instances": ["Great film"]}\' localhost:8501/v1/models/sentiment:predict\n'
    "  curl localhost:8501/v1/models/sentiment      (versions: START, LOADING, AVAILABLE, END + load errors)\n"
    "  curl localhost:8501/monitoring/prometheus/metrics"
)
@click.argument("export_root", required=False, metavar="EXPORT_ROOT", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--model_config_file",
    "--model-config-file",
    "model_config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="TF Serving's ModelServerConfig text proto (tfrnn export --serving-config writes one): model names, "
    "base paths (absolute, or relative to the file), model_version_policy, version_labels. Instead of EXPORT_ROOT.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0 to expose it).")
@click.option(
    "--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="Port (TF Serving's REST port)."
)
@click.option(
    "--grpc-port",
    "--grpc_port",
    "grpc_port",
    default=8500,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of TF Serving's gRPC API (PredictionService, ModelService); 0 serves no gRPC.",
)
@click.option(
    "--file_system_poll_wait_seconds",
    "--file-system-poll-wait-seconds",
    "poll_seconds",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds between two looks for new, changed or deleted versions.",
)
@click.option(
    "--max_batch_size",
    "--max-batch-size",
    "max_batch_size",
    type=click.IntRange(min=1),
    help="Most instances in one request (more is a 400, as TF Serving's batching answers). Default: the "
    "--batching_parameters_file's max_batch_size, else 1024 (1000 with --enable_batching, TF Serving's default).",
)
@click.option(
    "--enable_batching",
    "--enable-batching",
    "enable_batching",
    is_flag=True,
    help="Run concurrent Predict requests to a model in batches, as TF Serving's --enable_batching "
    "(parameters from --batching_parameters_file, else TF Serving's defaults).",
)
@click.option(
    "--batching_parameters_file",
    "--batching-parameters-file",
    "batching_parameters_file",
    type=click.Path(exists=True, dir_okay=False),
    help="TF Serving's batching parameters (tfrnn export --batching writes one); its max_batch_size bounds "
    "requests, and with --enable_batching it sets how batches form.",
)
@click.option(
    "--max-request-mb", default=10, show_default=True, type=click.IntRange(min=1), help="Largest request body."
)
@reports_user_errors
def serve(
    export_root,
    model_config_file,
    host,
    port,
    grpc_port,
    poll_seconds,
    max_batch_size,
    enable_batching,
    batching_parameters_file,
    max_request_mb,
):
    """Serve exports with TF Serving's REST and gRPC APIs (a development stand-in; use TF Serving in production).

    EXPORT_ROOT serves every model folder under it, newest version only (TF Serving's default
    version policy); --model_config_file serves what the config lists, with its version policies
    and labels. Versions load in the background when they appear (warm-up records replayed first)
    and only then serve; a version that fails to load is reported in the model's status and the
    previous one keeps serving; deleted versions are unloaded. --enable_batching runs concurrent
    requests in batches, as TF Serving does.
    """
    import dataclasses

    from tfrnn.serving.batching import BatchingParameters, read_batching_parameters
    from tfrnn.serving.predict import DEFAULT_MAX_INSTANCES
    from tfrnn.serving.server import serve as run_server

    if (export_root is None) == (model_config_file is None):
        raise UserError("give EXPORT_ROOT or --model_config_file (one of them)")
    parameters, given = BatchingParameters(), set()
    if batching_parameters_file is not None:
        parameters, given = read_batching_parameters(batching_parameters_file)
    if max_batch_size is None and ("max_batch_size" in given or enable_batching):
        max_batch_size = parameters.max_batch_size
    max_instances = max_batch_size or DEFAULT_MAX_INSTANCES
    batching = None
    if enable_batching:
        batching = parameters
        if max_batch_size != parameters.max_batch_size:
            if parameters.allowed_batch_sizes:
                raise UserError(
                    f"--max_batch_size {max_batch_size}: the batching parameters file's allowed_batch_sizes end "
                    f"with its max_batch_size, {parameters.max_batch_size}"
                )
            batching = dataclasses.replace(parameters, max_batch_size=max_batch_size)
    source = export_root or model_config_file
    grpc = f" and gRPC on {host}:{grpc_port}" if grpc_port else ""
    batched = ""
    if batching is not None:
        batched = (
            f"; batching up to {batching.max_batch_size} instances, {batching.batch_timeout_micros} us timeout, "
            f"{batching.num_batch_threads} threads"
        )
    click.echo(
        f"serving {source} on http://{host}:{port}/v1/models/NAME{grpc} (at most {max_instances} instances a "
        f"request{batched}; Ctrl-C stops)"
    )
    run_server(
        export_root,
        host=host,
        port=port,
        max_request_bytes=max_request_mb * 2**20,
        poll_seconds=poll_seconds,
        model_config_file=model_config_file,
        max_instances=max_instances,
        grpc_port=grpc_port,
        batching=batching,
    )


# Commands in modules of their own (imported last: they use this module's helpers).
from tfrnn_cli.explain import explain  # noqa: E402
from tfrnn_cli.report import report  # noqa: E402
from tfrnn_cli.tune import tune  # noqa: E402

cli.add_command(tune)
cli.add_command(explain)
cli.add_command(report)


def main():
    cli(prog_name="tfrnn")


if __name__ == "__main__":
    sys.exit(main())

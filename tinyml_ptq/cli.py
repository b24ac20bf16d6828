"""`tinyml-ptq` command line: a thin layer over the Python API.

Each command parses options, calls one API function and prints its result.
User errors become one `error: ...` line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

import click

from .core.errors import UserError
from .target.boards import KERNEL_CHOICES, OPT_LEVELS


def compiler_flag_options(command):
    """--opt, --lto and --cflags, as build and deploy take them."""
    command = click.option("--cflags", default=None, metavar="FLAGS",
                           help="More compiler flags, e.g. --cflags=-fno-omit-frame-pointer.")(command)
    command = click.option("--lto", is_flag=True, help="Link-time optimization (-flto).")(command)
    return click.option("--opt", type=click.Choice(OPT_LEVELS), default=None, metavar="LEVEL",
                        help=f"Optimization level (default -O2): {', '.join(OPT_LEVELS)}.")(command)


KERNELS_HELP = ("Kernel set of the runtime: auto picks the optimized set on cores with the DSP extension "
                "(Cortex-M4/M7/M33/M55), scalar on other Cortex-M cores and reference on the host; native: reference "
                "(portable C), dsp (SIMD), helium (MVE, Cortex-M55) or scalar (portable C for Cortex-M0/M0+/M3); "
                "tflm: reference (TFLM's) or cmsis_nn (OPTIMIZED_KERNEL_DIR=cmsis_nn).")

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tinyml-ptq")
def cli() -> None:
    """Keras model to verified int8 firmware for Arm Cortex-M."""


@cli.command("quantize")
@click.argument("model", type=click.Path())
@click.option("--data", "data", required=True, metavar="CALIB",
              help="Calibration samples: .npz (x, optional y), .npy, .csv, an image folder, or file.py:function.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .tflite file to write.")
@click.option("--samples", default=200, show_default=True, type=click.IntRange(min=1),
              help="Calibration samples to draw (fixed-seed random subset).")
@click.option("--mode", default="int8", show_default=True, type=click.Choice(["int8", "int16x8", "dynamic", "float16"]),
              help="int8 feeds later stages; the others are for comparison.")
@click.option("--per-tensor", is_flag=True, help="Per-tensor instead of per-channel weight scales.")
@click.option("--eval", "eval_data", default=None, metavar="EVAL",
              help="Evaluation samples (same formats; labels y give top-1 accuracy).")
@click.option("--eval-samples", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Evaluation samples to draw at most.")
@click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False),
              help="Write the report as JSON to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
@click.option("--calibration", default=None, metavar="METHOD",
              help="Activation ranges: auto (default for int8: per tensor, by held-out output SQNR; keeps "
                   "min/max unless that gains clearly), minmax, percentile:P, samples:P or mse.")
@click.option("--equalize", is_flag=True, help="Cross-layer equalization (folds batch norms) before conversion.")
@click.option("--bias-correction", is_flag=True, help="Correct the mean output shift caused by weight rounding.")
def quantize_cmd(model: str, data: str, output: str, samples: int, mode: str, per_tensor: bool,
                 eval_data: str | None, eval_samples: int, report_path: str | None, as_json: bool,
                 calibration: str | None, equalize: bool, bias_correction: bool) -> None:
    """Post-training quantization of a Keras MODEL (.keras, .h5 or SavedModel folder) to OUT.tflite."""
    import json

    from .core import progress
    from .quantization.quant_report import format_report
    from .quantization.quantize import quantize

    if as_json:
        progress.set_enabled(False)
    result = quantize(model, data, output, samples=samples, mode=mode, per_tensor=per_tensor,
                      eval_data=eval_data, report_path=report_path, eval_samples=eval_samples,
                      calibration=calibration, equalize=equalize, bias_correction=bias_correction)
    click.echo(json.dumps(result.report, indent=2) if as_json else format_report(result.report))


@cli.command("generate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Project folder to write (created, or replaced if it holds an earlier project).")
@click.option("--board", default="mps2-an386", show_default=True, help="Target board (see 'tinyml-ptq boards').")
@click.option("--name", default=None, help="Model name reported by the device (default: the file name).")
@click.option("--runtime", type=click.Choice(["native", "tflm"]), default="native", show_default=True,
              help="native: C for tinyml-ptq's int8 runtime; tflm: a TensorFlow Lite Micro project "
                   "(build with --tflm-dir or make TFLM_DIR=...).")
@click.option("--kernels", type=click.Choice(KERNEL_CHOICES), default="auto", show_default=True,
              help=KERNELS_HELP)
@click.option("--weights-memory", type=click.Choice(["internal", "external"]), default="internal", show_default=True,
              help="external: the weights in the board's external memory instead of its flash "
                   "(boards with one: 'tinyml-ptq boards').")
def generate_cmd(model: str, out_dir: str, board: str, name: str | None, runtime: str, kernels: str,
                 weights_memory: str) -> None:
    """Write a self-contained firmware project for an int8 MODEL.tflite."""
    from .compiler.project import generate

    result = generate(model, out_dir, board=board, name=name, runtime=runtime, kernels=kernels,
                      weights_memory=weights_memory)
    click.echo(f"wrote {result.project_dir}: model '{result.model_name}' for {result.board}, "
               f"{len(result.op_names)} ops, arena {result.arena_bytes} bytes, weights {result.weights_bytes} bytes"
               + (" in external memory" if weights_memory == "external" else "")
               + f", {'TFLM ' if runtime == 'tflm' else ''}{result.kernels} kernels")
    if result.does_not_fit:
        click.echo(f"warning: {result.does_not_fit}", err=True)
    if runtime == "tflm":
        click.echo(f"build it with: tinyml-ptq build {result.project_dir} --tflm-dir TFLM_SOURCE_TREE")
    else:
        click.echo(f"build it with: tinyml-ptq build {result.project_dir}   (or: make -C {result.project_dir})")


@cli.command("build")
@click.argument("project_dir", type=click.Path(file_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Also write the flash/RAM report as JSON to this file.")
@click.option("--tflm-dir", type=click.Path(file_okay=False), default=None,
              help="TFLM source tree, for projects made with --runtime tflm (default: $TFLM_DIR).")
@compiler_flag_options
def build_cmd(project_dir: str, json_out: str | None, tflm_dir: str | None, opt: str | None, lto: bool,
              cflags: str | None) -> None:
    """Build a generated project with make; report flash and RAM against the board."""
    from .target.build import build

    result = build(project_dir, json_out=json_out, tflm_dir=tflm_dir, opt=opt, lto=lto, cflags=cflags)
    click.echo(result.summary())


@cli.command("boards")
@click.option("--json", "as_json", is_flag=True, help="Print the board list as JSON.")
def boards_cmd(as_json: bool) -> None:
    """List the boards firmware can be generated for, and how each is verified."""
    import json

    from .target.boards import format_size, list_boards

    boards = list_boards()
    if as_json:
        click.echo(json.dumps([b.to_dict() for b in boards], indent=2))
        return
    for b in boards:
        run = b.emulator or ("native" if b.is_host else "none")
        click.echo(f"{b.name:<15} {b.cpu:<40} flash {format_size(b.flash_bytes):>6}  RAM {format_size(b.ram_bytes):>6}  "
                   f"kernels {b.kernels:<9} emulator {run:<7} {b.verification}")
        click.echo(f"{'':<15} verified: {b.verified}")
        if b.external_memory:
            click.echo(f"{'':<15} external memory (--weights-memory external): {b.external_memory}")


@cli.command("operators")
@click.option("--json", "as_json", is_flag=True, help="Print the operators and their constraints as JSON.")
@click.option("--markdown", is_flag=True, help="Print the generated part of docs/operators.md.")
def operators_cmd(as_json: bool, markdown: bool) -> None:
    """List the TFLite operators the native runtime runs, the kernel sets with a kernel of
    their own for each, and whether it also runs int16x8; --json and --markdown add the
    constraints a refusal quotes."""
    import json

    from .compiler.operators import operator_support, operators_json, operators_markdown

    if as_json and markdown:
        raise UserError("--json and --markdown are two formats; choose one")
    if as_json:
        click.echo(json.dumps(operators_json(), indent=2))
    elif markdown:
        click.echo(operators_markdown(), nl=False)
    else:
        for entry in operator_support():
            click.echo(f"{entry.opcode:<29} own kernels {','.join(entry.own_kernels) or '-':<19} "
                       f"int16x8 {'yes' if entry.int16x8 else 'no'}")


def _use_renode(ctx, param, value):
    if value is not None:
        from .device.emulator import set_renode

        set_renode(value)
    return value


RENODE_OPTION = click.option(
    "--renode", type=click.Path(), default=None, expose_value=False, callback=_use_renode,
    help="Renode launcher for the Renode boards (default: $RENODE, else renode on PATH).")


@cli.command("run")
@RENODE_OPTION
@click.argument("project_dir", type=click.Path(file_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False),
              help="Samples: .npz (x, optional labels y; x0, x1, ... for several inputs) or .npy; float "
                   "samples are quantized with the device's input scale, integer ones are sent as they are.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Run only the first N samples.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Emulator instances to split the samples over (same results as one).")
@click.option("--port", default=None, metavar="URL",
              help="Use a device on this serial port or pyserial URL instead of the emulator: "
                   "/dev/ttyACM0, socket://127.0.0.1:PORT (tinyml-ptq emulate), rfc2217://HOST:PORT.")
@click.option("--baud", type=int, default=115200, show_default=True, help="Baud rate for a serial --port.")
@click.option("--model", "model", type=click.Path(dir_okay=False), default=None,
              help="Reference .tflite (default: the one the project was generated from).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds to wait for a reply before retrying (INVOKE: adapts to the model).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the results as JSON to this file.")
@click.option("--save-outputs", type=click.Path(dir_okay=False), default=None,
              help="Save the device outputs as .npy (one output) or .npz with y0, y1, ... (several).")
def run_cmd(project_dir: str, data: str, limit: int | None, workers: int, port: str | None, baud: int,
            model: str | None, timeout: float, json_out: str | None, save_outputs: str | None) -> None:
    """Run samples through the built firmware (emulator or --port) and check it against TFLM."""
    from .device.run import run

    result = run(project_dir, data, limit=limit, workers=workers, port=port, json_out=json_out,
                 save_outputs=save_outputs, model=model, baud=baud, timeout=timeout)
    click.echo(result.summary())


@cli.command("emulate")
@RENODE_OPTION
@click.argument("project_dir", type=click.Path(file_okay=False))
@click.option("--serial", "serial", default="tcp:127.0.0.1:5555", show_default=True, metavar="tcp:HOST:PORT|stdio",
              help="Where the emulated UART goes: a TCP port to connect to, or this terminal.")
def emulate_cmd(project_dir: str, serial: str) -> None:
    """Boot the built firmware in its emulator (QEMU or Renode) with its UART on a TCP port, until
    interrupted (Ctrl-C)."""
    from .device.emulator import emulate

    try:
        emulate(project_dir, serial, announce=lambda line: click.echo(line, err=True))
    except KeyboardInterrupt:  # the normal way to stop it; the emulator is already gone
        click.echo("stopped", err=True)


@cli.command("flash")
@click.argument("project_dir", type=click.Path(file_okay=False))
@click.option("--probe", type=click.Choice(["pyocd", "openocd"]), default="pyocd", show_default=True,
              help="Debug-probe tool to program the board with.")
@click.option("--target", default=None,
              help="pyOCD target name, or comma-separated OpenOCD config files (default: the board's).")
def flash_cmd(project_dir: str, probe: str, target: str | None) -> None:
    """Program the built firmware onto a real board through its debug probe."""
    from .target.flash import flash

    result = flash(project_dir, probe=probe, target=target)
    click.echo(f"flashed {result.image} to {result.board} with {result.probe} ({result.target})")


@cli.command("deploy")
@RENODE_OPTION
@click.argument("model", type=click.Path())
@click.option("--data", "data", required=True, metavar="CALIB", help="Calibration samples (any quantize --data format).")
@click.option("--eval", "eval_data", required=True, metavar="EVAL",
              help="Evaluation samples (labels y give top-1 accuracy); quantize measures float and int8 "
                   "on them, run measures the device on the same samples.")
@click.option("--board", default="mps2-an386", show_default=True, help="Target board (see 'tinyml-ptq boards').")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for every artefact and report.json / report.html (reused when up to date).")
@click.option("--samples", default=200, show_default=True, type=click.IntRange(min=1),
              help="Calibration samples to draw (fixed-seed random subset).")
@click.option("--per-tensor", is_flag=True, help="Per-tensor instead of per-channel weight scales.")
@click.option("--eval-samples", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Evaluation samples to use at most (fixed-seed random subset).")
@click.option("--mode", type=click.Choice(["int8", "int16x8"]), default="int8", show_default=True,
              help="int16x8: 16-bit activations, 8-bit weights (native for some operators; all with --runtime tflm).")
@click.option("--name", default=None, help="Model name reported by the device (default: the .tflite name).")
@click.option("--runtime", type=click.Choice(["native", "tflm"]), default="native", show_default=True,
              help="As generate --runtime; tflm needs --tflm-dir or $TFLM_DIR.")
@click.option("--kernels", type=click.Choice(KERNEL_CHOICES), default="auto", show_default=True,
              help=KERNELS_HELP)
@click.option("--tflm-dir", type=click.Path(file_okay=False), default=None,
              help="TFLM source tree, for --runtime tflm (default: $TFLM_DIR).")
@click.option("--weights-memory", type=click.Choice(["internal", "external"]), default="internal", show_default=True,
              help="external: the weights in the board's external memory instead of its flash "
                   "(boards with one: 'tinyml-ptq boards').")
@compiler_flag_options
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Emulator instances to split the evaluation over.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds to wait for a device reply before retrying.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json instead of the summary.")
def deploy_cmd(model: str, data: str, eval_data: str, board: str, out_dir: str, samples: int, per_tensor: bool,
               eval_samples: int, mode: str, name: str | None, runtime: str, kernels: str, tflm_dir: str | None,
               weights_memory: str, opt: str | None, lto: bool, cflags: str | None, workers: int, timeout: float,
               as_json: bool) -> None:
    """Quantize, generate, build and run MODEL in one go; write DIR/report.json and DIR/report.html."""
    import json

    from .core import progress
    from .pipeline.deploy import deploy

    if as_json:
        progress.set_enabled(False)
    result = deploy(model, data, eval_data, out_dir, board=board, samples=samples, per_tensor=per_tensor,
                    eval_samples=eval_samples, name=name, runtime=runtime, kernels=kernels, tflm_dir=tflm_dir,
                    opt=opt, lto=lto, cflags=cflags, workers=workers, timeout=timeout, mode=mode,
                    weights_memory=weights_memory, command=["tinyml-ptq", *sys.argv[1:]] if sys.argv[1:2] == ["deploy"] else None)
    if as_json:
        click.echo(json.dumps(result.report, indent=2))
    else:
        click.echo(result.summary())
        click.echo(f"report     {result.report_json}, {result.report_html}")


@cli.command("check")
@click.argument("report", type=click.Path(dir_okay=False))
@click.option("--max-accuracy-drop", type=float, default=None, metavar="PTS",
              help="Percentage points the device's top-1 may lose against the float model.")
@click.option("--min-exact", type=float, default=None, metavar="F",
              help="Least fraction of device outputs identical to the TFLM reference (1.0: all).")
@click.option("--max-flash", default=None, metavar="SIZE", help="Flash limit: bytes, or 256K, 1M (binary units).")
@click.option("--max-ram", default=None, metavar="SIZE", help="RAM limit: bytes, or 256K, 1M (binary units).")
@click.option("--max-latency", type=float, default=None, metavar="N",
              help="Mean latency limit per inference, in the report's unit (instructions under QEMU).")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also write JUnit XML, one test case per threshold.")
def check_cmd(report: str, max_accuracy_drop: float | None, min_exact: float | None, max_flash: str | None,
              max_ram: str | None, max_latency: float | None, junit: str | None) -> int:
    """Gate a deploy REPORT.json on thresholds: exit 0 if all hold, 1 if one fails, 2 on bad input."""
    from .pipeline.check import check

    result = check(report, max_accuracy_drop=max_accuracy_drop, min_exact=min_exact, max_flash=max_flash,
                   max_ram=max_ram, max_latency=max_latency, junit=junit)
    click.echo(result.summary())
    return 0 if result.passed else 1


def main(argv: list[str] | None = None) -> int:
    from .core import progress

    progress.set_enabled(True)  # an earlier --json command in this process turned it off
    try:
        result = cli.main(args=argv, prog_name="tinyml-ptq", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        return 130
    except click.exceptions.ClickException as exc:
        click.echo(f"error: {exc.format_message()} (see 'tinyml-ptq --help')", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


@cli.command("verify")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", required=True, metavar="EVAL",
              help="Samples (.npz, .npy, .csv, image folder, file.py:function; a .npz with x0, x1, ... for "
                   "several inputs); float samples are quantized with the model's input scale, int8 ones are "
                   "used as they are.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Check only the first N samples.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the comparison as JSON to this file.")
def verify_cmd(model: str, data: str, limit: int | None, json_out: str | None) -> int:
    """Build the generated C for the host and compare every output byte with TFLite Micro."""
    from .pipeline.verify import verify

    result = verify(model, data, limit=limit, json_out=json_out)
    click.echo(f"samples       {result.samples}")
    click.echo(f"exact         {result.exact:.4f}   (byte-identical to the TFLite Micro reference)")
    click.echo(f"max_abs_diff  {result.max_abs_diff}")
    click.echo(f"arena_bytes   {result.arena_bytes}")
    if result.litert is not None:
        click.echo(f"litert        exact {result.litert.exact:.4f}, max_abs_diff {result.litert.max_abs_diff}"
                   "   (informational: LiteRT's optimized kernels may round differently)")
    return 0 if result.ok else 1


@cli.command("bench")
@RENODE_OPTION
@click.option("-o", "--output", "out_dir", default="bench", show_default=True, type=click.Path(file_okay=False),
              help="Folder for results.json and results.md.")
@click.option("--model", "models", multiple=True, type=click.Path(dir_okay=False),
              help="An int8 .tflite to benchmark (repeatable; default: the four MLPerf Tiny models beside the "
                   "checkout and the digits example).")
@click.option("--board", "boards", multiple=True,
              help="Emulated board (repeatable; default: mps2-an386, mps2-an500, mps2-an505, mps3-an547; our "
                   "optimized kernels are the core's: dsp, dsp and helium, or scalar).")
@click.option("--samples", default=3, show_default=True, type=click.IntRange(min=1),
              help="Random int8 inputs per model (instructions are averaged over them).")
@click.option("--no-stages", is_flag=True, help="Skip the digits example's stage timing and run throughput.")
@click.option("--tflm-dir", type=click.Path(file_okay=False), default=None,
              help="TFLM source tree to compare against (default: $TFLM_DIR; without one, our figures only).")
@click.option("--json", "as_json", is_flag=True, help="Print results.json instead of the tables.")
def bench_cmd(out_dir: str, models: tuple[str, ...], boards: tuple[str, ...], samples: int, no_stages: bool,
              tflm_dir: str | None, as_json: bool) -> None:
    """TFLM (reference, CMSIS-NN) and our runtime (reference, and the core's optimized set: DSP, DSP and Helium
    where the core has MVE, scalar without the DSP extension) side by side on emulated boards: instructions per
    inference, MACs, arena, RAM and flash split of each model."""
    import json

    from .core import progress
    from .pipeline.bench import bench, format_markdown

    if as_json:
        progress.set_enabled(False)
    chosen = {"boards": boards} if boards else {}  # else bench's own DEFAULT_BOARDS
    result = bench(out_dir, models=list(models) or None, **chosen, samples=samples, stages=not no_stages,
                   tflm_dir=tflm_dir)
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else format_markdown(result), nl=False)
    if not as_json:
        click.echo(f"wrote {result.json_path} and {result.markdown_path}")


if __name__ == "__main__":  # last: every command above is registered by now
    sys.exit(main())

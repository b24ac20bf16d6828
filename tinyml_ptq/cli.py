"""`tinyml-ptq` command line: a thin layer over the Python API.

Each command parses options, calls one API function and prints its result.
User errors become one `error: ...` line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

import click

from .errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tinyml-ptq")
def cli() -> None:
    """Keras model to verified int8 firmware for Arm Cortex-M."""


def main(argv: list[str] | None = None) -> int:
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


if __name__ == "__main__":
    sys.exit(main())

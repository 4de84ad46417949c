"""gainkit gains: the gains of any elementwise torch activation and what they do to a deep net.

    gainkit gains ACTIVATION [ACTIVATION ...] [--gain G ...] [--q0 Q] [--format F] [--verify]
    gainkit gains --all [--only-missing] [--gain G ...] [--q0 Q] [--format F] [--verify]
    gainkit gains --module-defaults [--width N] [--format F]

ACTIVATION is one of
    a torch.nn.functional function   relu, gelu, leaky_relu:0.2, elu:alpha=0.5
    a torch.nn module class          GELU, nn.LeakyReLU:0.2, Softplus:beta=2
    an importable callable           package.module:callable[:params] (a class is built
                                     with the params, then called)
Parameters follow a colon, comma-separated: positional values, then name=value. Values are
Python literals; a bare word is a string (gelu:approximate=tanh). phi' comes from autograd.

For each activation, on square bias-free layers with W ~ N(0, g^2 / N) (mean-field limit):
    g_f        1 / sqrt(E[phi(z)^2])    forward-preserving: q* = 1
    g_b        1 / sqrt(E[phi'(z)^2])   backward-preserving at q = 1
    g_c        1 / sqrt(Var[phi(z)])    centred (NFNet)
    critical   chi_1 = 1 at the fixed point (edge of chaos), or none with the reason
and, at PyTorch's gain (the installed torch's calculate_gain, where it has one) and at each --gain:
    q*         fixed point of the pre-activations' second moment, reached from --q0
    chi_1      factor per layer of the mean squared gradient (< 1 vanishing, > 1 exploding)
    xi_q       forward depth scale, layers per e-fold of q - q* (negative: q* repels)
    xi_grad    gradient depth scale 1 / |ln chi_1|; 10x depth: layers for 10x in gradient
    regime     ordered, chaotic, near-critical (10x takes over 100 layers) or critical

--module-defaults adds what nn.Linear's own default (kaiming_uniform_(a=sqrt(5)): gain
1/sqrt(3), biases of variance 1/(3 fan_in); src/gainkit/data/module_defaults.toml) does to a deep
square stack of --width units, for each activation of calculate_gain's list: the mean-field
regime, the factor the second moment changes by in the first layer from q0 = 1, the floor q*
the biases hold it at, chi_1 and the depth for a 10x change of the gradient
(gainkit.suite.default_stacks; the conformance suite measures the same stacks).

--verify runs the empirical deep-network probe (gainkit.probe.mlp) at each of those gains and
prints the measured output second moment and gradient growth against the prediction, with
finite-width corrections and a 3-sigma band (gainkit.meanfield.finitewidth), for any activation
(phi' by autograd).

Common names work too (identity, linear, swish, log_sigmoid, ...: the list below). With
several activations, each gets its rows or its own error line on stderr; --format json lists
the failed ones under "failed" and follows src/gainkit/schemas/gains.schema.json (infinite
values as the strings "inf" and "-inf").

Exit codes:
    0   every activation analysed (with --all, a gain without a fixed point is reported in
        its row)
    2   usage error, or an activation named could not be analysed (its error line says
        why: unknown name, not elementwise, not differentiable, gives nan or inf, no fixed
        point at a gain asked for (q* -> inf), no critical gain for --gain critical); the
        others are still reported
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TYPE_CHECKING, List

from gainkit import activations
from gainkit.meanfield import theory
from gainkit.reports import markdown
from gainkit.tools import cli

if TYPE_CHECKING:  # imported when used: torch takes seconds to load, --help must not wait
    from gainkit.gains import torch_activations as acts

PROG = "gainkit gains"
EXIT_OK, EXIT_USAGE = 0, 2
NAMED_GAINS = theory.GAIN_NAMES
DEFAULT_Q0 = 1.0


def _gain(text: str):
    if text in NAMED_GAINS:
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number or one of {', '.join(NAMED_GAINS)}") from None
    if not 0.0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r}: a gain must be positive and finite")
    return value


def _aliases_help() -> str:
    spelled: dict = {}
    for word, spelling in activations.aliases().items():
        spelled.setdefault(spelling, []).append(word)
    return "aliases (the torch name each stands for):\n" + "\n".join(
        f"    {', '.join(words)} -> {spelling}" for spelling, words in spelled.items())


def _width(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: the width must be an integer >= 2")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ToolParser(PROG, __doc__)
    parser.epilog = _aliases_help()
    parser.add_argument("activations", nargs="*", metavar="ACTIVATION")
    parser.add_argument("--all", action="store_true",
                        help="every elementwise activation in torch.nn.functional")
    parser.add_argument("--only-missing", action="store_true",
                        help="only activations calculate_gain of this torch has no entry for")
    parser.add_argument("--gain", type=_gain, action="append", default=[], metavar="G",
                        help="also analyse at this gain: a number or forward, backward, centred,"
                             " critical (repeatable)")
    parser.add_argument("--q0", type=cli.positive_number("q0"), default=DEFAULT_Q0,
                        help="second moment of the network input (default: %(default)s)")
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    parser.add_argument("--verify", action="store_true",
                        help="measure each gain on deep random networks (gainkit.probe.mlp)")
    parser.add_argument("--module-defaults", action="store_true",
                        help="what nn.Linear's default init does to a deep stack, for each "
                             "activation of calculate_gain's list")
    parser.add_argument("--width", type=_width, default=None,
                        help="width of the --module-defaults stacks (default: 64)")
    return parser


class InputError(Exception):
    """A user error, reported on one line with exit code 2."""


# --- collecting (gainkit.gains.gainsheet does the analysis) ------------------------------------

def _resolve(spec: str) -> acts.TorchActivation:
    from gainkit.gains import torch_activations as acts

    try:
        return acts.resolve(spec)
    except acts.ActivationError as error:
        raise InputError(str(error)) from None


def _analysed(spec: str, act, args, strict: bool) -> dict:
    from gainkit.gains import gainsheet
    from gainkit.gains import torch_activations as acts

    try:
        result = gainsheet.analyse(act, args.gain, args.q0, strict)
    except acts.ActivationError as error:  # met only during the analysis (far out)
        raise InputError(f"{spec}: {error}") from None
    except gainsheet.SheetError as error:
        raise InputError(str(error)) from None
    if args.verify:
        try:
            result["verify"] = gainsheet.verify(act, result["at"], args.q0)
        except (ValueError, ArithmeticError) as error:  # the noise model of a dead signal
            if strict:
                raise InputError(f"--verify: {spec}: {error}") from None
            result["not_verified"] = str(error)
    return result


def collect(args) -> dict:
    """Each activation's gain sheet, or (``failed``) the one-line reason it has none."""
    from gainkit.gains import torch_activations as acts

    strict = not args.all
    skipped = {}
    if args.all:
        names, skipped = acts.functional_activations()
        specs = list(args.activations) + [n for n in names if n not in args.activations]
    else:
        specs = args.activations
    results, failed = [], []
    for spec in specs:
        try:
            act = _resolve(spec)
            if args.only_missing and acts.pytorch_gain(act)[0] is not None:
                continue
            results.append(_analysed(spec, act, args, strict))
        except InputError as error:
            if spec not in args.activations:  # --all: a function that is no activation
                skipped[spec] = str(error)
                continue
            failed.append({"name": spec, "error": str(error)})
    report = {"torch": acts.torch.__version__, "command": " ".join([PROG] + args.argv),
              "activations": results, "failed": failed, "skipped": skipped}
    if getattr(args, "module_defaults", False):  # collect() is also called with other args
        from gainkit.suite import default_stacks

        width = args.width or default_stacks.WIDTH
        report["module_defaults"] = [stack.as_dict()
                                     for stack in default_stacks.summaries(width)]
    return report


# --- output -------------------------------------------------------------------------------

def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.7g}"


def _critical(gains: dict) -> str:
    return _number(gains["critical"]) if gains["critical"] is not None else "none"


GAIN_HEADER = ["activation", "g_f", "g_b", "g_c", "critical", "PyTorch"]
BEHAVIOUR_HEADER = ["activation", "gain", "source", "q*", "chi_1", "xi_q", "xi_grad",
                    "10x depth", "regime"]


def gain_rows(report: dict) -> List[List[str]]:
    return [[item["name"]] + [_number(item["gains"][key]) for key in ("forward", "backward",
                                                                      "centred")]
            + [_critical(item["gains"]), _number(item["pytorch_gain"])]
            for item in report["activations"]]


def behaviour_rows(report: dict) -> List[List[str]]:
    rows = []
    for item in report["activations"]:
        for row in item["at"]:
            if "no_fixed_point" in row or "error" in row:
                rows.append([item["name"], _number(row["gain"]), row["source"]]
                            + ["inf" if "no_fixed_point" in row else "-"] + ["-"] * 4
                            + ["no fixed point" if "no_fixed_point" in row else "failed"])
                continue
            rows.append([item["name"], _number(row["gain"]), row["source"]]
                        + [_number(row[key]) for key in ("q_star", "chi_1", "xi_q",
                                                         "xi_grad", "depth_10x")]
                        + [row["regime"]])
    return rows


DEFAULTS_HEADER = ["module", "activation", "regime", "q_1/q_0", "q*", "chi_1", "10x depth"]


def defaults_rows(report: dict) -> List[List[str]]:
    return [["nn.Linear", row["case_id"], row["regime"], _number(row["first_layer_factor"]),
             _number(row["q_star"]), _number(row["chi_1"]), _number(row["depth_10x"])]
            for row in report.get("module_defaults", [])]


def _defaults_caption(report: dict) -> str:
    rows = report.get("module_defaults", [])
    if not rows:
        return ""
    return ("module defaults: deep square stacks of nn.Linear({0}, {0}) as it initialises "
            "itself (implied gain {1:.4g}, bias variance {2:.4g}); q_1/q_0 from q0 = 1, q* the "
            "floor the biases hold the second moment at".format(
                rows[0]["width"], rows[0]["gain"], rows[0]["bias_variance"]))


VERIFY_HEADER = ["activation", "gain", "source", "q_L", "predicted", "mean field", "band x/",
                 "grad growth", "predicted", "mean field", "band x/", "within"]


def verify_rows(report: dict) -> List[List[str]]:
    rows = []
    for item in report["activations"]:
        for check in item.get("verify", []):
            q, grad = check["q_out"], check["grad_growth"]
            rows.append([item["name"], _number(check["gain"]), check["source"]]
                        + [_number(part[key]) for part in (q, grad)
                           for key in ("measured", "predicted", "mean_field", "band")]
                        + ["yes" if q["within"] and grad["within"] else "no"])
    return rows


def _verify_caption(report: dict) -> str:
    for item in report["activations"]:
        for check in item.get("verify", []):
            return ("probe: {draws} networks of {depth} layers x {width} units, xavier_normal_ at "
                    "the gain. q_L: output second moment; grad growth: grad_0 / grad_L of the "
                    "mean squared gradient; geometric means over the networks, predicted with "
                    "finite-width corrections and a 3-sigma band (gainkit.meanfield.finitewidth)"
                    .format(**check))
    return ""


def notes(report: dict) -> List[str]:
    found = [f"{item['name']}: no critical gain: {item['gains']['critical_reason']}"
             for item in report["activations"] if item["gains"]["critical"] is None]
    if report["skipped"]:
        found.append(f"{len(report['skipped'])} other functions of torch.nn.functional are not "
                     "analysed: not elementwise with their default arguments, or in-place "
                     "twins (--format json gives each reason); threshold needs arguments "
                     "(threshold:0.5,0.0), prelu is the module PReLU")
    unverified = [item["name"] for item in report["activations"] if "not_verified" in item]
    if unverified:
        found.append("not measured (the finite-width model failed; --format json gives "
                     "each reason): " + ", ".join(unverified))
    return found


def _aligned(header: List[str], rows: List[List[str]]) -> List[str]:
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in [header] + rows]


MARKDOWN_LEGEND = [
    "Square bias-free layers with W ~ N(0, g^2 / N), in the mean-field limit; z ~ N(0, 1).",
    "",
    "- g_f = 1 / sqrt(E[phi(z)^2]): forward-preserving, the fixed point q* = 1.",
    "- g_b = 1 / sqrt(E[phi'(z)^2]): backward-preserving at q = 1.",
    "- g_c = 1 / sqrt(Var[phi(z)]): centred (the NFNet gamma).",
    "- critical: chi_1 = 1 at the fixed point (edge of chaos); none when chi_1 jumps over 1.",
    "- PyTorch: `torch.nn.init.calculate_gain` of this torch (- where it has no entry).",
    "- q*: fixed point of the pre-activation second moment from q0; chi_1: factor per layer",
    "  of the mean squared gradient; xi_q: layers per e-fold of q - q* (negative: q* repels);",
    "  xi_grad = 1 / |ln chi_1|; 10x depth: layers for a 10x change of the squared gradient.",
]


def render_table(report: dict) -> str:
    lines = [f"torch {report['torch']}"]
    if report["activations"]:
        lines += [""] + _aligned(GAIN_HEADER, gain_rows(report))
    behaviour = behaviour_rows(report)
    if behaviour:
        lines += [""] + _aligned(BEHAVIOUR_HEADER, behaviour)
    if verify_rows(report):
        lines += ["", _verify_caption(report)] + _aligned(VERIFY_HEADER, verify_rows(report))
    if defaults_rows(report):
        lines += ["", _defaults_caption(report)] + _aligned(DEFAULTS_HEADER, defaults_rows(report))
        lines += [row["sentence"] for row in report["module_defaults"]]
    lines += [""] + notes(report) if notes(report) else []
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    lines = ["# Gains of torch activations", "",
             f"Generated by `{report['command']}` on torch {report['torch']}.", ""]
    if report["activations"]:
        lines += MARKDOWN_LEGEND + ["", "## Gains", ""]
        rows = [[row[0], item["formula"] or item["definition"]] + row[1:]
                for row, item in zip(gain_rows(report), report["activations"])]
        lines += markdown.markdown_table(GAIN_HEADER[:1] + ["phi(x)"] + GAIN_HEADER[1:], rows)
    behaviour = behaviour_rows(report)
    if behaviour:
        lines += ["", "## Depth behaviour (mean field)", ""]
        lines += markdown.markdown_table(BEHAVIOUR_HEADER, behaviour)
    if verify_rows(report):
        lines += ["", "## Measured (gainkit.probe.mlp)", "", _verify_caption(report) + ".", ""]
        lines += markdown.markdown_table(VERIFY_HEADER, verify_rows(report))
    if defaults_rows(report):
        lines += ["", "## Module defaults in deep stacks (mean field)", "",
                  _defaults_caption(report) + ".", ""]
        lines += markdown.markdown_table(DEFAULTS_HEADER, defaults_rows(report))
        lines += [""] + ["- " + row["sentence"] for row in report["module_defaults"]]
    if notes(report):
        lines += ["", "## Notes", ""] + ["- " + note for note in notes(report)]
    return "\n".join(lines)


def _json_safe(value):
    """JSON has no infinity: schemas/gains.schema.json's "number" is a JSON number or one of
    the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def render(report: dict, form: str) -> str:
    if form == "json":
        return json.dumps(_json_safe(report), indent=2, allow_nan=False)
    return render_markdown(report) if form == "markdown" else render_table(report)


def main(argv: List[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if not args.all and not args.activations and not args.module_defaults:
        return _fail("name an ACTIVATION or use --all or --module-defaults")
    if args.width is not None and not args.module_defaults:
        return _fail("--width sizes the --module-defaults stacks: add --module-defaults")
    from gainkit.gains import torch_activations as acts

    try:
        report = collect(args)
    except (InputError, acts.ActivationError) as error:
        return _fail(str(error))
    if report["activations"] or report.get("module_defaults") or args.format == "json":
        print(render(report, args.format), flush=True)
    for failure in report["failed"]:
        _fail(failure["error"])
    return EXIT_USAGE if report["failed"] else EXIT_OK


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))

"""``initlab theory ...``: the theory calculators from the command line.

    initlab theory saturation --activation sigmoid --at 0 2 10 --ratio 2 10
    initlab theory weighted-input --weights nielsen_large --bias same --n 1000 --n-on 500 \\
        --threshold 1 --activation sigmoid
    initlab theory propagation --widths 784,256x10,10 --activation tanh --weights lecun_normal \\
        --bias zeros --plot out.png
    initlab theory meanfield --activation tanh --sigma-b2 0.05 [--sigma-w2 1.5]
    initlab theory critical-line --activation tanh --sigma-b2 0,0.01,0.05,0.09,0.5,1 [--plot f.png]
    initlab theory jacobian --widths 128x33 --activation tanh \\
        --weights orthogonal:gain=1.327 --bias critical --plot j.png

Every subcommand takes ``--json`` (plain data on stdout instead of a table). Initializers are
given as ``name`` or ``name:key=value,key=value`` (``critical:sigma_b2=0.001``).
"""

from __future__ import annotations

import argparse
import json
import math

from ..core.validation import fail

# ---------------------------------------------------------------- parsing helpers


def _value(text: str):
    low = text.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_init(text: str | None):
    """``"name"`` or ``"name:k=v,k=v"`` -> Initializer; ``None``/``"none"`` -> None; ``"same"``."""
    from ..core.registry import get

    if text is None or text.lower() == "none":
        return None
    if text == "same":
        return "same"
    name, _, rest = text.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, eq, val = item.partition("=")
        if not eq:
            raise fail("initializer", "parameters must be written key=value", text,
                       "write e.g. orthogonal:gain=1.3.")
        params[key.strip()] = _value(val.strip())
    return get(name.strip(), **params)


def parse_widths(text: str) -> list[int]:
    """``"784,256x10,10"`` -> ``[784] + [256] * 10 + [10]``."""
    out: list[int] = []
    try:
        for part in filter(None, text.split(",")):
            w, _, rep = part.partition("x")
            out.extend([int(w)] * (int(rep) if rep else 1))
    except ValueError:
        raise fail("widths", "must be comma-separated ints, `WxN` repeating W N times", text,
                   "pass e.g. --widths 784,256x10,10.") from None
    return out


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise fail(name, "must be comma-separated numbers", text, "pass e.g. 0,0.05,0.5.") from None


def _jsonable(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return _jsonable(obj.item())
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    return obj


def _emit(args, data: dict, lines: list[str]) -> int:
    if args.json:
        print(json.dumps(_jsonable(data), indent=2, sort_keys=True))
    else:
        print("\n".join(lines))
    return 0


def _g(x) -> str:
    return f"{x:.6g}" if isinstance(x, (int, float)) else str(x)


def _dist_text(d) -> str:
    """A distribution in words: ``normal, mean 0, std 1`` (never a Python dict)."""
    if d is None:
        return "none"
    fields = {k: v for k, v in d.to_dict().items() if k != "kind"}
    body = ", ".join(f"{k} {_g(v)}" for k, v in fields.items())
    return f"{d.to_dict()['kind'].lower()}" + (f", {body}" if body else "")


def _header(title: str, *lines: str) -> list[str]:
    return [title, *[f"  {line}" for line in lines], ""]


# ---------------------------------------------------------------- handlers


def _cmd_saturation(args) -> int:
    from .saturation import derivative, saturated_set, slowdown_ratio

    rows = [(x, derivative(args.activation, x)) for x in args.at]
    data: dict = {"activation": args.activation,
                  "derivative": [{"x": x, "df": d} for x, d in rows],
                  "saturated_set": saturated_set(args.activation, args.threshold),
                  "threshold": args.threshold}
    lines = _header(f"Saturation of {args.activation}: its derivative f'(x) at the given points "
                    "(a unit learns at a rate proportional to f')",
                    f"saturated region: where |f'(x)| < {args.threshold:g}")
    lines += [f"{'x':>10s} {'f_prime(x)':>14s} {'rate vs f_prime(0)':>19s}"]
    d0 = derivative(args.activation, 0.0)
    for x, d in rows:
        rel = f"{d / d0:19.4g}" if d0 else f"{'-':>19s}"
        lines.append(f"{x:10.4g} {d:14.6g} {rel}")
    if args.ratio:
        r = slowdown_ratio(args.ratio[0], args.ratio[1], args.activation)
        data["slowdown_ratio"] = {"x_fast": args.ratio[0], "x_slow": args.ratio[1], "ratio": r}
        lines.append(f"\nf'({args.ratio[0]:g}) / f'({args.ratio[1]:g}) = {r:.6g}: a unit at "
                     f"{args.ratio[1]:g} learns {r:.4g}x slower than one at {args.ratio[0]:g}")
    sat = " U ".join(f"({a:.4g}, {b:.4g})" for a, b in data["saturated_set"]) or "empty"
    lines.append(f"saturated region (|f'| < {args.threshold:g}): {sat}")
    return _emit(args, data, lines)


def _cmd_weighted_input(args) -> int:
    from .saturation import saturated_fraction
    from .weighted_input import FixedInputs, IidInputs, binary_inputs, weighted_input

    inputs: FixedInputs | IidInputs
    if args.n_on is not None:
        inputs = binary_inputs(args.n, args.n_on)
        desc = f"{args.n} inputs, {args.n_on} equal to 1, the rest 0 (fixed)"
    else:
        inputs = IidInputs(args.n, args.input_mean, args.input_var)
        desc = (f"{args.n} i.i.d. inputs with mean {args.input_mean:g} and variance "
                f"{args.input_var:g}")
    wi = weighted_input(parse_init(args.weights), inputs, bias=parse_init(args.bias))
    data = wi.as_dict()
    how = ("exactly normal (Gaussian weights, fixed inputs)" if wi.exact
           else "normal approximation (central limit theorem over the inputs)")
    lines = _header("Weighted input z = w.x + b of one unit at initialization",
                    f"inputs:  {desc}",
                    f"weights: {args.weights} -> each w_i {_dist_text(wi.weight_dist)}",
                    "bias:    " + ("no bias" if wi.bias_dist is None else
                                    f"{args.bias} -> {_dist_text(wi.bias_dist)}"))
    lines += [f"{'quantity':<12s} {'value':>12s}",
              f"{'mean':<12s} {wi.mean:12.6g}",
              f"{'variance':<12s} {wi.variance:12.6g}",
              f"{'std':<12s} {wi.std:12.6g}",
              f"distribution of z: {how}"]
    for t in args.threshold or []:
        p = wi.prob_exceeds(t)
        data.setdefault("prob_exceeds", {})[str(t)] = p
        lines.append(f"P(|z| > {t:g}) = {p:.6g}")
    if args.activation:
        f = saturated_fraction(wi, args.activation, args.saturation_threshold)
        data["saturated_fraction"] = f
        lines.append(f"fraction of units saturated ({args.activation}, |f'(z)| < "
                     f"{args.saturation_threshold:g}): {f:.4f}")
    return _emit(args, data, lines)


def _cmd_propagation(args) -> int:
    from .plots import plot_propagation
    from .propagation import measure_propagation, predict_propagation

    widths = parse_widths(args.widths)
    winit, binit = parse_init(args.weights), parse_init(args.bias)
    pred = predict_propagation(widths, args.activation, winit, binit,
                               input_second_moment=args.input_var)
    if not args.no_measure:
        pred = measure_propagation(widths, args.activation, winit, binit, batch=args.batch,
                                   n_nets=args.nets, seed=args.seed,
                                   input_second_moment=args.input_var, prediction=pred,
                                   progress=not args.quiet and not args.json)
    if args.plot:
        import matplotlib.pyplot as plt

        plt.close(plot_propagation(pred, args.plot))
    measured = ("measured in torch on " f"{args.nets} net(s) x {args.batch} inputs, seed "
                f"{args.seed}" if not args.no_measure else "not measured (--no-measure)")
    lines = _header(f"Variance propagation through an MLP of widths {args.widths} "
                    f"({args.activation}; weights {args.weights}, bias {args.bias}; "
                    f"E[x^2] = {args.input_var:g})",
                    "fwd: E[z_l^2], the second moment of layer l's pre-activations",
                    "bwd: E[(dLoss/dz_l)^2] for loss sum(g * z_L), g ~ N(0, 1) "
                    "(1 at the last layer)",
                    f"pred: mean-field prediction; meas: {measured}")
    lines.append(f"{'layer':>5s} {'width':>6s} {'fwd pred':>11s} {'fwd meas':>11s} "
                 f"{'bwd pred':>11s} {'bwd meas':>11s}")
    for li in range(pred.depth):
        mf = f"{pred.measured_forward[li]:11.4g}" if pred.measured_forward else f"{'-':>11s}"
        mb = f"{pred.measured_backward[li]:11.4g}" if pred.measured_backward else f"{'-':>11s}"
        lines.append(f"{li + 1:5d} {widths[li + 1]:6d} {pred.forward[li]:11.4g} {mf} "
                     f"{pred.backward[li]:11.4g} {mb}")
    if args.plot:
        lines.append(f"plot: {args.plot}")
    return _emit(args, pred.as_dict(), lines)


_MF_ROWS = (  # field, label, meaning
    ("q_star", "q*", "fixed point of the pre-activation second moment"),
    ("chi1", "chi_1", "slope of the correlation map at c = 1 (1 = critical)"),
    ("c_star", "c*", "fixed point of the correlation between two inputs"),
    ("chi_c", "chi_c", "slope of the correlation map at c*"),
    ("xi_q", "xi_q", "depth scale of q's approach to q* (layers)"),
    ("xi_c", "xi_c", "depth scale of c's approach to c* (layers)"),
    ("max_trainable_depth", "6 xi_c", "trainable depth, Schoenholz et al. 2017 (layers)"),
)


def _cmd_meanfield(args) -> int:
    from .meanfield import critical_sigma_w2, mean_field

    solved = args.sigma_w2 is None
    sw = critical_sigma_w2(args.sigma_b2, args.activation) if solved else args.sigma_w2
    mf = mean_field(sw, args.sigma_b2, args.activation)
    d = mf.as_dict()
    point = (f"sigma_w2 = {sw:.6g} (solved: on the critical line)" if solved
             else f"sigma_w2 = {sw:.6g}")
    lines = _header(f"Mean field of a deep {args.activation} network at infinite width "
                    "(Poole et al. 2016; Schoenholz et al. 2017)",
                    f"{point}, sigma_b2 = {args.sigma_b2:g} "
                    "(weight variance x fan_in, bias variance)",
                    f"phase: {mf.phase}")
    lines.append(f"{'quantity':<8s} {'value':>12s}  meaning")
    for key, label, meaning in _MF_ROWS:
        v = getattr(mf, key)
        text = "n/a" if isinstance(v, float) and math.isnan(v) else _g(v)
        lines.append(f"{label:<8s} {text:>12s}  {meaning}")
    if mf.note:
        import textwrap

        lines += ["", textwrap.fill("note: " + mf.note, 100, subsequent_indent="  ")]
    return _emit(args, d, lines)


def _cmd_critical_line(args) -> int:
    from .meanfield import critical_line

    pts = critical_line(_floats(args.sigma_b2, "sigma_b2"), args.activation)
    if args.plot:
        import matplotlib.pyplot as plt

        from .plots import plot_critical_line

        plt.close(plot_critical_line(pts, args.activation, args.plot))
    data = {"activation": args.activation,
            "points": [{"sigma_b2": sb, "sigma_w2": sw} for sb, sw in pts]}
    lines = _header(f"Critical line of {args.activation}: the weight variance sigma_w2 "
                    "(x fan_in) where chi_1 = 1, for each bias variance sigma_b2")
    lines += [f"{'sigma_b2':>10s} {'sigma_w2':>10s}"]
    lines += [f"{sb:10.4g} {sw:10.4f}" for sb, sw in pts]
    if args.plot:
        lines.append(f"plot: {args.plot}")
    return _emit(args, data, lines)


def _cmd_jacobian(args) -> int:
    from .jacobian import jacobian_spectrum

    spec = jacobian_spectrum(parse_widths(args.widths), args.activation,
                             parse_init(args.weights), parse_init(args.bias),
                             n_inputs=args.inputs, seed=args.seed,
                             input_second_moment=args.input_var, method=args.method,
                             progress=not args.quiet and not args.json)
    if args.plot:
        import matplotlib.pyplot as plt

        from .plots import plot_jacobian_spectrum

        plt.close(plot_jacobian_spectrum(spec, args.plot))
    io = spec.input_output
    lines = _header(f"Singular values s of the Jacobians of an MLP of widths {args.widths} "
                    f"({args.activation}; weights {args.weights}, bias {args.bias}) at "
                    f"{args.inputs} random input(s), seed {args.seed}, method {spec.method}",
                    "dynamical isometry: mean s^2 near 1 and var/mean^2 near 0")
    lines += [f"input-output Jacobian: mean s^2 {io.mean_s2:.4g}, var(s^2) {io.var_s2:.4g}, "
              f"var/mean^2 {io.spread:.4g}, s_max {io.s_max:.4g}, s_min {io.s_min:.4g}",
              "layer-to-layer Jacobians:",
              f"{'layer':>5s} {'mean s':>9s} {'mean s^2':>9s} {'var/mean^2':>11s}"]
    for li, s in enumerate(spec.layers):
        lines.append(f"{li + 1:5d} {s.mean_s:9.4g} {s.mean_s2:9.4g} {s.spread:11.4g}")
    if args.plot:
        lines.append(f"plot: {args.plot}")
    return _emit(args, spec.as_dict(), lines)


# ---------------------------------------------------------------- registration


def register(subparsers) -> None:
    """Add ``initlab theory`` and its sub-subcommands."""
    from ..cli import HelpFormatter, output_file
    from ..util.argtypes import finite_float, whole_number

    def parser(sub, name, help, description):
        return sub.add_parser(name, help=help, description=description,
                              formatter_class=HelpFormatter)

    p = parser(subparsers, "theory", "theory calculators: saturation, weighted input, "
               "variance propagation, mean field, Jacobian spectrum",
               "Theory calculators: why an initialization works, computed. Each prints a "
               "header saying what it computed and a table; --json prints plain data.\n\n"
               "examples:\n" + "\n".join(line[2:] for line in __doc__.splitlines()
                                          if line.startswith("    ")))
    sub = p.add_subparsers(dest="theory_command", metavar="CALCULATOR")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    init_help = ("initializer: a catalog name or name:key=value,... "
                 "(e.g. orthogonal:gain=1.3)")

    def common(sp):
        sp.add_argument("--json", action="store_true",
                        help="print plain data as JSON (for scripts) instead of the table")

    s = parser(sub, "saturation", "f'(x), slowdown ratios, the saturated region",
               "The derivative f'(x) of an activation at given points, how many times slower "
               "a unit learns at one point than at another, and the region where |f'| is "
               "below a threshold (Nielsen, ch. 2-3; LeCun et al. 1998).")
    s.add_argument("--activation", default="sigmoid", help="activation name")
    s.add_argument("--at", type=finite_float, nargs="+", default=[0.0, 2.0, 10.0],
                   metavar="X", help="points x where f'(x) is printed")
    s.add_argument("--ratio", type=finite_float, nargs=2, metavar=("X_FAST", "X_SLOW"),
                   help="also print f'(X_FAST) / f'(X_SLOW)")
    s.add_argument("--threshold", type=finite_float, default=0.01,
                   help="saturated where |f'| < this")
    common(s)
    s.set_defaults(func=_cmd_saturation)

    s = parser(sub, "weighted-input", "distribution of z = w.x + b at initialization",
               "Mean, variance and tail probabilities of one unit's weighted input z = w.x + b "
               "when w and b are drawn from initializers (exact for Gaussian weights and fixed "
               "inputs, else the CLT normal approximation).")
    s.add_argument("--weights", default="torch_default", metavar="INIT", help=init_help)
    s.add_argument("--bias", default="none", metavar="INIT",
                   help="bias initializer, 'same' (the weights' bias rule) or 'none'")
    s.add_argument("--n", type=whole_number, default=1000, help="number of inputs")
    s.add_argument("--n-on", type=whole_number, default=None,
                   help="binary inputs: this many equal to 1, the rest 0 (default: i.i.d. "
                        "inputs with --input-mean and --input-var)")
    s.add_argument("--input-mean", type=finite_float, default=0.0,
                   help="mean of the i.i.d. inputs")
    s.add_argument("--input-var", type=float, default=1.0,
                   help="variance of the i.i.d. inputs")
    s.add_argument("--threshold", type=float, nargs="*", metavar="T",
                   help="report P(|z| > T) for each T")
    s.add_argument("--activation", default=None,
                   help="also report the fraction of saturated units for this activation")
    s.add_argument("--saturation-threshold", type=finite_float, default=0.01,
                   help="saturated where |f'(z)| < this")
    common(s)
    s.set_defaults(func=_cmd_weighted_input)

    s = parser(sub, "propagation", "forward/backward variance through depth",
               "Second moments of the pre-activations (forward) and of the gradients "
               "(backward) layer by layer: the mean-field prediction and a measurement in "
               "torch (Glorot & Bengio 2010; He et al. 2015).")
    s.add_argument("--widths", default="784,256x10,10",
                   help="layer widths, WxN repeats W N times")
    s.add_argument("--activation", default="tanh", help="activation after every hidden layer")
    s.add_argument("--weights", default="lecun_normal", metavar="INIT", help=init_help)
    s.add_argument("--bias", default="zeros", metavar="INIT", help=init_help)
    s.add_argument("--input-var", type=float, default=1.0, help="E[x^2] of the inputs")
    s.add_argument("--batch", type=whole_number, default=256, help="inputs per measured network")
    s.add_argument("--nets", type=whole_number, default=1, help="networks to average over")
    s.add_argument("--seed", type=whole_number, default=0, help="seed of the measurement")
    s.add_argument("--no-measure", action="store_true", help="prediction only (no torch run)")
    s.add_argument("--plot", metavar="PNG", type=output_file, help="save a figure here")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    common(s)
    s.set_defaults(func=_cmd_propagation)

    s = parser(sub, "meanfield", "q*, chi_1, depth scales at (sigma_w2, sigma_b2)",
               "Mean-field quantities of a deep fully connected network at infinite width: "
               "the fixed point q*, chi_1 and the phase (ordered / critical / chaotic), c*, "
               "and the depth scales xi_q, xi_c (Poole et al. 2016; Schoenholz et al. 2017).")
    s.add_argument("--activation", default="tanh", help="activation name")
    s.add_argument("--sigma-w2", type=float, default=None,
                   help="weight variance x fan_in (default: the critical value for "
                        "--sigma-b2)")
    s.add_argument("--sigma-b2", type=float, default=0.05, help="bias variance")
    common(s)
    s.set_defaults(func=_cmd_meanfield)

    s = parser(sub, "critical-line", "critical sigma_w2 for each sigma_b2",
               "The critical line chi_1 = 1 (edge of chaos): for each bias variance, the weight "
               "variance (x fan_in) where it lies.")
    s.add_argument("--activation", default="tanh", help="activation name")
    s.add_argument("--sigma-b2", default="0,0.01,0.05,0.09,0.5,1.0",
                   help="comma-separated bias variances")
    s.add_argument("--plot", metavar="PNG", type=output_file, help="save a figure here")
    common(s)
    s.set_defaults(func=_cmd_critical_line)

    s = parser(sub, "jacobian", "singular values of the Jacobians at initialization",
               "Singular values of the input-output Jacobian and of each layer-to-layer "
               "Jacobian of an MLP at random inputs (dynamical isometry: Saxe et al. 2014; "
               "Pennington et al. 2017).")
    s.add_argument("--widths", default="128x17", help="layer widths, WxN repeats W N times")
    s.add_argument("--activation", default="tanh", help="activation after every hidden layer")
    s.add_argument("--weights", default="critical", metavar="INIT", help=init_help)
    s.add_argument("--bias", default="critical", metavar="INIT", help=init_help)
    s.add_argument("--input-var", type=float, default=1.0, help="E[x^2] of the inputs")
    s.add_argument("--inputs", type=whole_number, default=4, help="random inputs to evaluate at")
    s.add_argument("--method", default="auto", choices=("auto", "exact", "randomized"),
                   help="exact SVD, randomized estimate, or auto (by size)")
    s.add_argument("--seed", type=whole_number, default=0, help="seed of the inputs and weights")
    s.add_argument("--plot", metavar="PNG", type=output_file, help="save a figure here")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    common(s)
    s.set_defaults(func=_cmd_jacobian)


def main(argv=None) -> int:  # pragma: no cover - convenience for `python -m`
    parser = argparse.ArgumentParser(prog="initlab")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)

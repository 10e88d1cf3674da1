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


# ---------------------------------------------------------------- handlers


def _cmd_saturation(args) -> int:
    from .saturation import derivative, saturated_set, slowdown_ratio

    rows = [(x, derivative(args.activation, x)) for x in args.at]
    data: dict = {"activation": args.activation,
                  "derivative": [{"x": x, "df": d} for x, d in rows],
                  "saturated_set": saturated_set(args.activation, args.threshold),
                  "threshold": args.threshold}
    lines = [f"f = {args.activation}", f"{'x':>10s} {'f_prime(x)':>14s}"]
    lines += [f"{x:10.4g} {d:14.6g}" for x, d in rows]
    if args.ratio:
        r = slowdown_ratio(args.ratio[0], args.ratio[1], args.activation)
        data["slowdown_ratio"] = {"x_fast": args.ratio[0], "x_slow": args.ratio[1], "ratio": r}
        lines.append(f"f'({args.ratio[0]:g}) / f'({args.ratio[1]:g}) = {r:.6g}")
    lines.append(f"saturated (|f'| < {args.threshold:g}): "
                 + " U ".join(f"({a:.4g}, {b:.4g})" for a, b in data["saturated_set"]))
    return _emit(args, data, lines)


def _cmd_weighted_input(args) -> int:
    from .saturation import saturated_fraction
    from .weighted_input import IidInputs, binary_inputs, weighted_input

    if args.n_on is not None:
        inputs = binary_inputs(args.n, args.n_on)
        desc = f"{args.n} inputs, {args.n_on} equal to 1, rest 0"
    else:
        inputs = IidInputs(args.n, args.input_mean, args.input_var)
        desc = f"{args.n} i.i.d. inputs, mean {args.input_mean:g}, variance {args.input_var:g}"
    wi = weighted_input(parse_init(args.weights), inputs, bias=parse_init(args.bias))
    data = wi.as_dict()
    lines = [desc, f"weights {data['weights']}", f"bias    {data['bias']}",
             f"z: mean {wi.mean:.6g}, variance {wi.variance:.6g}, std {wi.std:.6g} "
             f"({'exactly normal' if wi.exact else 'normal approximation (CLT)'})"]
    for t in args.threshold or []:
        p = wi.prob_exceeds(t)
        data.setdefault("prob_exceeds", {})[str(t)] = p
        lines.append(f"P(|z| > {t:g}) = {p:.6g}")
    if args.activation:
        f = saturated_fraction(wi, args.activation, args.saturation_threshold)
        data["saturated_fraction"] = f
        lines.append(f"fraction saturated ({args.activation}, |f'| < "
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
    lines = [f"{'layer':>5s} {'width':>6s} {'fwd pred':>11s} {'fwd meas':>11s} "
             f"{'bwd pred':>11s} {'bwd meas':>11s}"]
    for li in range(pred.depth):
        mf = pred.measured_forward[li] if pred.measured_forward else float("nan")
        mb = pred.measured_backward[li] if pred.measured_backward else float("nan")
        lines.append(f"{li + 1:5d} {widths[li + 1]:6d} {pred.forward[li]:11.4g} {mf:11.4g} "
                     f"{pred.backward[li]:11.4g} {mb:11.4g}")
    if args.plot:
        lines.append(f"plot: {args.plot}")
    return _emit(args, pred.as_dict(), lines)


def _cmd_meanfield(args) -> int:
    from .meanfield import critical_sigma_w2, mean_field

    sw = args.sigma_w2 if args.sigma_w2 is not None else critical_sigma_w2(args.sigma_b2,
                                                                          args.activation)
    mf = mean_field(sw, args.sigma_b2, args.activation)
    d = mf.as_dict()
    lines = [f"{k:20s} {_g(v)}" for k, v in d.items()]
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
    lines = [f"{'sigma_b2':>10s} {'sigma_w2':>10s}"] + [f"{sb:10.4g} {sw:10.4f}" for sb, sw in pts]
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
    lines = [f"method {spec.method}; input-output Jacobian: mean s^2 {io.mean_s2:.4g}, "
             f"var(s^2) {io.var_s2:.4g}, var/mean^2 {io.spread:.4g}, s_max {io.s_max:.4g}, "
             f"s_min {io.s_min:.4g}",
             f"{'layer':>5s} {'mean s':>9s} {'mean s^2':>9s} {'var/mean^2':>11s}"]
    for li, s in enumerate(spec.layers):
        lines.append(f"{li + 1:5d} {s.mean_s:9.4g} {s.mean_s2:9.4g} {s.spread:11.4g}")
    return _emit(args, spec.as_dict(), lines)


# ---------------------------------------------------------------- registration


def register(subparsers) -> None:
    """Add ``initlab theory`` and its sub-subcommands."""
    p = subparsers.add_parser("theory", help="theory calculators: saturation, weighted input, "
                              "variance propagation, mean field, Jacobian spectrum")
    sub = p.add_subparsers(dest="theory_command", metavar="CALCULATOR")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    def common(sp):
        sp.add_argument("--json", action="store_true", help="print plain data as JSON")

    s = sub.add_parser("saturation", help="f'(x), slowdown ratios, the saturated region")
    s.add_argument("--activation", default="sigmoid")
    s.add_argument("--at", type=float, nargs="+", default=[0.0, 2.0, 10.0], metavar="X")
    s.add_argument("--ratio", type=float, nargs=2, metavar=("X_FAST", "X_SLOW"))
    s.add_argument("--threshold", type=float, default=0.01, help="saturated where |f'| < this")
    common(s)
    s.set_defaults(func=_cmd_saturation)

    s = sub.add_parser("weighted-input", help="distribution of z = w.x + b at initialization")
    s.add_argument("--weights", default="torch_default", metavar="INIT")
    s.add_argument("--bias", default="none", metavar="INIT",
                   help="bias initializer, 'same' (the weights' bias rule) or 'none'")
    s.add_argument("--n", type=int, default=1000, help="number of inputs")
    s.add_argument("--n-on", type=int, default=None,
                   help="binary inputs: this many equal to 1, the rest 0 (else i.i.d.)")
    s.add_argument("--input-mean", type=float, default=0.0)
    s.add_argument("--input-var", type=float, default=1.0)
    s.add_argument("--threshold", type=float, nargs="*", metavar="T", help="report P(|z| > T)")
    s.add_argument("--activation", default=None, help="also report the saturated fraction")
    s.add_argument("--saturation-threshold", type=float, default=0.01)
    common(s)
    s.set_defaults(func=_cmd_weighted_input)

    s = sub.add_parser("propagation", help="forward/backward variance through depth")
    s.add_argument("--widths", default="784,256x10,10", help="e.g. 784,256x10,10")
    s.add_argument("--activation", default="tanh")
    s.add_argument("--weights", default="lecun_normal", metavar="INIT")
    s.add_argument("--bias", default="zeros", metavar="INIT")
    s.add_argument("--input-var", type=float, default=1.0, help="E[x^2] of the inputs")
    s.add_argument("--batch", type=int, default=256)
    s.add_argument("--nets", type=int, default=1, help="networks to average over")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-measure", action="store_true", help="prediction only (no torch run)")
    s.add_argument("--plot", metavar="PNG")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    common(s)
    s.set_defaults(func=_cmd_propagation)

    s = sub.add_parser("meanfield", help="q*, chi_1, depth scales at (sigma_w2, sigma_b2)")
    s.add_argument("--activation", default="tanh")
    s.add_argument("--sigma-w2", type=float, default=None,
                   help="weight variance x fan_in (default: the critical value)")
    s.add_argument("--sigma-b2", type=float, default=0.05)
    common(s)
    s.set_defaults(func=_cmd_meanfield)

    s = sub.add_parser("critical-line", help="critical sigma_w2 for each sigma_b2")
    s.add_argument("--activation", default="tanh")
    s.add_argument("--sigma-b2", default="0,0.01,0.05,0.09,0.5,1.0")
    s.add_argument("--plot", metavar="PNG")
    common(s)
    s.set_defaults(func=_cmd_critical_line)

    s = sub.add_parser("jacobian", help="singular values of the Jacobians at initialization")
    s.add_argument("--widths", default="128x17")
    s.add_argument("--activation", default="tanh")
    s.add_argument("--weights", default="critical", metavar="INIT")
    s.add_argument("--bias", default="critical", metavar="INIT")
    s.add_argument("--input-var", type=float, default=1.0)
    s.add_argument("--inputs", type=int, default=4, help="sample inputs")
    s.add_argument("--method", default="auto", choices=("auto", "exact", "randomized"))
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--plot", metavar="PNG")
    s.add_argument("--quiet", action="store_true")
    common(s)
    s.set_defaults(func=_cmd_jacobian)


def main(argv=None) -> int:  # pragma: no cover - convenience for `python -m`
    parser = argparse.ArgumentParser(prog="initlab")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)

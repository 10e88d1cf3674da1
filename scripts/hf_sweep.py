"""Run an initlab plan on every model type that transformers knows, built from a small config.

    python scripts/hf_sweep.py --out results/hf-sweep.json            # all types, resumes
    python scripts/hf_sweep.py --only llama,gpt2 --plan he --out /tmp/two.json
    python scripts/hf_sweep.py --one llama                            # one type, in this process

"A feature works when it works on a real model": this is the widest such check. For each model
type in transformers' ``CONFIG_MAPPING`` the default config is shrunk (:func:`shrink`: two layers,
four experts, widths and heads divided by one factor; every sub-config alike: a VLM's vision and
text towers), the model is built with ``AutoModel`` (or the first task head that accepts the
config), and ``initlab.apply(model, PLAN, seed=0)`` runs on it. Each type runs in a process of its own
(forked) with a timeout, so a hang or a crash in one cannot stop the sweep.

Outcomes per type, in the JSON file (written atomically after every type; a rerun with the same
``--out`` resumes, and runs the entries of the outcomes named by ``--retry fail,timeout`` again):

- ``ok``: the plan ran; the entry has the description's method (``probe``, ``probe-real``,
  ``names-fallback``), the tensors initialized and kept, the unmatched ones and the seconds;
- ``fail``: initlab raised (the error's type and first line): initlab's bug to fix, or a model
  it should refuse with a clear error;
- ``build``: transformers could not build the model from the shrunk config (a constraint the
  shrinking broke, a missing optional dependency): not an initlab result;
- ``timeout``: the type did not finish in ``--timeout`` seconds (the machine's load matters);
- ``large``: above ``--max-params`` after shrinking (not run).

The summary printed at the end counts each outcome and lists every ``fail``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing as mp
import pkgutil
import time
from pathlib import Path

#: widths divided by the shrink factor k (see :func:`shrink`), heads too, so that the head size
#: (and the rotary and multimodal-rope sections that depend on it) is the model's own
WIDTHS = ("hidden_size", "d_model", "n_embd", "embed_dim", "hidden_dim", "model_dim",
          "d_embed", "embedding_size", "projection_dim", "text_embed_dim", "vision_embed_dim",
          "intermediate_size", "ffn_dim", "n_inner", "d_ff", "encoder_ffn_dim",
          "decoder_ffn_dim", "ffn_hidden_size", "mlp_dim", "moe_intermediate_size",
          "shared_expert_intermediate_size", "expert_intermediate_size", "d_inner",
          "encoder_hidden_size", "out_hidden_size", "cross_attention_hidden_size",
          "projection_size")
#: lists of widths (a CNN's stages: ConvNeXt's hidden_sizes), divided by k too
WIDTH_LISTS = ("hidden_sizes", "embed_dims", "neck_hidden_sizes")
HEADS = ("num_attention_heads", "n_head", "encoder_attention_heads", "decoder_attention_heads",
         "num_heads", "n_heads", "num_key_value_heads", "n_kv_heads", "num_kv_heads",
         "multi_query_group_num")
#: attributes set to a small count whatever the model's
COUNTS = {2: ("num_hidden_layers", "n_layer", "num_layers", "encoder_layers", "decoder_layers",
              "n_layers", "num_decoder_layers", "num_encoder_layers", "num_experts_per_tok",
              "moe_topk"),
          4: ("num_experts", "num_local_experts", "n_routed_experts")}
#: lists that follow the number of layers (a per-layer pattern): cut to the new depth
PER_LAYER = ("layer_types", "attention_types", "block_types", "mlp_only_layers",
             "layers_block_type")
TASK_HEADS = ("AutoModel", "AutoModelForCausalLM", "AutoModelForMaskedLM",
              "AutoModelForSeq2SeqLM", "AutoModelForImageClassification",
              "AutoModelForSequenceClassification", "AutoModelForAudioClassification",
              "AutoBackbone")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _set(cfg, name: str, value) -> None:
    try:
        setattr(cfg, name, value)
    except AttributeError:      # a property computed from others (Jamba's layer pattern from
        pass                    # its periods, a codec's hidden_size): follows them


def shrink(cfg, seen=None):
    """Shrink a config and its sub-configs in place: two layers (per-layer patterns cut to
    them), four experts (two per token), a vocabulary of at most 1,024 (keeping every special
    token id), and widths and head counts divided by one factor k, the largest of 8, 4, 2, 1
    that divides every width and head count of the config. So the head size stays the model's
    own, and with it everything sized from it (rotary dimensions, multimodal rope sections):
    shrinking must not break the forward, or the sweep would measure its own shrinking."""
    from transformers import PretrainedConfig

    seen = set() if seen is None else seen
    if id(cfg) in seen:
        return cfg
    seen.add(id(cfg))
    widths = {a: v for a in WIDTHS if _int(v := getattr(cfg, a, None)) and v > 0}
    heads = {a: v for a in HEADS if _int(v := getattr(cfg, a, None)) and v > 0}
    lists = {a: v for a in WIDTH_LISTS if isinstance(v := getattr(cfg, a, None), (list, tuple))
             and v and all(_int(x) and x > 0 for x in v)}
    every = [*widths.values(), *heads.values(), *(x for v in lists.values() for x in v)]
    k = next(k for k in (8, 4, 2, 1) if all(v % k == 0 for v in every))
    if widths and max(widths.values()) // k < 32:
        k = 1                    # already small
    for a, v in (*widths.items(), *heads.items()):
        _set(cfg, a, v // k)
    for a, v in lists.items():
        _set(cfg, a, type(v)(x // k for x in v))
    # a per-layer pattern keeps one layer of each kind (a hybrid's attention and its mamba
    # layers), at least two, in their order; the layer counts follow it
    pattern = next((v for a in PER_LAYER if isinstance(v := getattr(cfg, a, None), (list, tuple))
                    and len(v) > 2), None)
    keep = None
    if pattern is not None:
        try:
            keep = sorted({pattern.index(x) for x in pattern} | {0, 1})
        except TypeError:        # unhashable entries
            keep = [0, 1]
        for a in PER_LAYER:
            v = getattr(cfg, a, None)
            if isinstance(v, (list, tuple)) and len(v) == len(pattern):
                _set(cfg, a, type(v)(v[i] for i in keep))
    for size, names in COUNTS.items():
        for a in names:
            v = getattr(cfg, a, None)
            n = len(keep) if keep is not None and "layers" in a else size
            if _int(v) and v > n:
                _set(cfg, a, n)
    vocab = getattr(cfg, "vocab_size", None)
    if _int(vocab) and vocab > 1024:
        ids = [getattr(cfg, a, None) for a in dir(cfg) if a.endswith("token_id")]
        top = max([i for i in ids if _int(i)] + [0])
        cfg.vocab_size = max(1024, top + 1)
    for a in list(vars(cfg)):
        sub = getattr(cfg, a, None)
        if isinstance(sub, PretrainedConfig):
            shrink(sub, seen)
    return cfg


def build(model_type: str):
    """The model of ``model_type`` from its shrunk default config, with the first head that
    accepts it (:data:`TASK_HEADS`)."""
    import transformers

    cfg = shrink(transformers.CONFIG_MAPPING[model_type]())
    errors = []
    for head in TASK_HEADS:
        try:
            return getattr(transformers, head).from_config(cfg), head
        except Exception as e:  # noqa: BLE001  (the next head may take it)
            errors.append(f"{head}: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
                          if str(e) else f"{head}: {type(e).__name__}")
    # a sub-model's config (a CLIP's text tower, AlignTextConfig) has no Auto class: its model
    # is named after it (AlignTextModel), or the name without "Model" (Aimv2VisionModel)
    stem = type(cfg).__name__.removesuffix("Config")
    for name in (f"{stem}Model", stem, f"{stem.removesuffix('Model')}Model"):
        cls = getattr(transformers, name, None)
        if isinstance(cls, type) and hasattr(cls, "config_class"):
            try:
                return cls(cfg), name
            except Exception as e:  # noqa: BLE001
                errors.append(f"{name}: {type(e).__name__}: {str(e)[:160]}")
                break
    raise RuntimeError(errors[0] if len(errors) == len(TASK_HEADS) else errors[-1])


def run_one(model_type: str, plan: str, max_params: int, built=None) -> dict:
    """One type's entry; ``built()`` is called once the model is built."""
    import torch

    import initlab
    from initlab.modelinit.describe import describe

    torch.set_num_threads(1)
    try:
        model, head = build(model_type)
    except Exception as e:  # noqa: BLE001
        return {"outcome": "build", "error": str(e)[:300]}
    if built is not None:
        built()
    n = sum(p.numel() for p in model.parameters())
    if n > max_params:
        return {"outcome": "large", "params": n, "head": head}
    t0 = time.perf_counter()
    try:
        rep = initlab.apply(model, plan, seed=0)
        desc = describe(model)
        method = desc.method
        why = next((n for n in desc.notes if "names-fallback" in n), "")[:300]
    except Exception as e:  # noqa: BLE001  (the outcome to record)
        first = str(e).splitlines()[0][:300] if str(e) else ""
        return {"outcome": "fail", "error": f"{type(e).__name__}: {first}", "params": n,
                "head": head, "class": type(model).__name__}
    return {"outcome": "ok", "method": method, "params": n, "head": head,
            "class": type(model).__name__, "records": len(rep.records),
            **{status: sum(r.status == status for r in rep.records)
               for status in ("initialized", "loaded", "kept", "unmatched")},
            "unmatched_names": rep.unmatched[:8], "seconds": round(time.perf_counter() - t0, 3),
            **({"fallback": why} if method == "names-fallback" else {})}


def _child(model_type: str, plan: str, max_params: int, conn) -> None:
    try:
        res = run_one(model_type, plan, max_params, built=lambda: conn.send("built"))
    except BaseException as e:  # noqa: BLE001  (run_one records initlab's errors itself)
        res = {"outcome": "fail", "error": f"{type(e).__name__}: {str(e)[:300]}"}
    conn.send(res)
    conn.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="hf-sweep.json", help="results file (resumed if present)")
    ap.add_argument("--plan", default="auto")
    ap.add_argument("--only", default="", help="comma-separated model types")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per model type")
    ap.add_argument("--max-params", type=int, default=100_000_000)
    ap.add_argument("--workers", type=int, default=1, help="types run at once")
    ap.add_argument("--retry", default="", help="outcomes to run again (e.g. fail,timeout)")
    ap.add_argument("--one", default=None, help="run one type here and print its JSON")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.plan, args.max_params)))
        return 0

    import transformers

    from initlab.util.atomic import atomic_write_text

    out = Path(args.out)
    data = json.loads(out.read_text()) if out.exists() else {}
    if data and data.get("plan") != args.plan:
        raise SystemExit(f"--out {out} holds a sweep of plan {data.get('plan')!r}, not "
                         f"{args.plan!r}: pass another --out")
    data.update({"plan": args.plan, "transformers": transformers.__version__})
    types = data.setdefault("types", {})
    wanted = [t for t in args.only.split(",") if t] or sorted(transformers.CONFIG_MAPPING.keys())
    unknown = sorted(set(wanted) - set(transformers.CONFIG_MAPPING.keys()))
    if unknown:
        raise SystemExit(f"--only: {', '.join(unknown)} is not a model type of transformers "
                         f"{transformers.__version__} (see transformers.CONFIG_MAPPING)")
    todo = [t for t in wanted if t not in types or (
        types[t]["outcome"] in args.retry.split(","))]
    # each type in a process of its own, forked from this one (torch, transformers and initlab
    # imported once): a crash or a hang ends that process only
    import torch

    import initlab

    # every module a plan may import, imported here before the fork: the processes then run
    # the code as it was when the sweep started, whatever is edited meanwhile
    for pkg in ("core", "backends", "util", "modelinit", "diagnostics"):
        sub = importlib.import_module(f"initlab.{pkg}")
        for info in pkgutil.walk_packages(sub.__path__, f"initlab.{pkg}."):
            if not info.name.endswith(("jax_backend", "keras_backend")):  # other frameworks
                importlib.import_module(info.name)
    del initlab
    torch.set_num_threads(1)
    ctx = mp.get_context("fork")
    running: dict[str, tuple] = {}    # type -> (process, pipe, start)
    built: set[str] = set()            # types whose model transformers has built
    queue, done = list(todo), 0

    def finish(t: str, res: dict) -> None:
        nonlocal done
        done += 1
        types[t] = res
        atomic_write_text(out, json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"[{done}/{len(todo)}] {t}: {res['outcome']} {res.get('error', '')}"[:200],
              flush=True)

    while queue or running:
        while queue and len(running) < args.workers:
            t = queue.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(t, args.plan, args.max_params, send))
            proc.start()
            send.close()
            running[t] = (proc, recv, time.perf_counter())
        time.sleep(0.05)
        for t, (proc, recv, t0) in list(running.items()):
            wall = time.perf_counter() - t0
            res = None
            while res is None and recv.poll():
                try:
                    msg = recv.recv()
                except EOFError:
                    break
                if msg == "built":
                    built.add(t)
                else:
                    res = msg
            stage = "running the plan" if t in built else "building the model"
            if res is None and not proc.is_alive():
                # killed while transformers built it (BLT's 500,002-row hash tables take all
                # the memory): not an initlab result
                res = {"outcome": "fail" if t in built else "build",
                       "error": f"the process ended (exit {proc.exitcode}) while {stage}"}
            elif res is None and wall > args.timeout:
                proc.kill()
                res = {"outcome": "timeout", "error": f"over {args.timeout:.0f} s, {stage}"}
            elif res is None:
                continue
            proc.join(5)
            del running[t]
            res["wall"] = round(wall, 1)
            finish(t, res)
    counts: dict[str, int] = {}
    for r in types.values():
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    print(f"{len(types)} model types, plan {args.plan!r}, transformers "
          f"{transformers.__version__}: " + ", ".join(f"{v} {k}" for k, v in sorted(
              counts.items())))
    methods: dict[str, int] = {}
    for r in types.values():
        if r["outcome"] == "ok":
            methods[r["method"]] = methods.get(r["method"], 0) + 1
    print("  ok by description: " + ", ".join(f"{v} {k}" for k, v in sorted(methods.items())))
    left = sorted(t for t, r in types.items() if r.get("unmatched"))
    print(f"  {len(left)} ok with tensors no rule matched (left as built, with a warning): "
          + ", ".join(left))
    for t, r in sorted(types.items()):
        if r["outcome"] == "fail":
            print(f"  FAIL {t}: {r['error']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

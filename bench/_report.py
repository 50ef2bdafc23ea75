"""Render the benchmark results (the dict run.py builds) as markdown."""

from __future__ import annotations

LABELS = ("ferry / torch.onnx file", "ferry / ferry file", "onnxruntime / torch.onnx file",
          "onnxruntime / ferry file", "torch eager")
SHORT = ("ferry (T)", "ferry (F)", "ORT (T)", "ORT (F)", "torch eager")


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value:.3f}"
    if value < 100:
        return f"{value:.2f}"
    return f"{value:.0f}"


def _cell(summary: dict | None) -> str:
    if not summary:
        return "-"
    if "error" in summary:
        return f"n/a ({summary['error']})"
    return f"{ms(summary['median_ms'])} / {ms(summary['p90_ms'])}"


def _ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or "error" in a or "error" in b:
        return "-"
    return f"{a['median_ms'] / b['median_ms']:.2f}"


def _load(values) -> str:
    return f"{values[0]:.1f}" if values else "?"


def _cores(value) -> str:
    return "?" if value is None else f"{value:.2f}"


def header(results: dict) -> list[str]:
    env = results["environment"]
    pools = env["threadpools"]
    seen = ", ".join(f"{k}={v}" for k, v in env["openblas_env"].items() if v is not None) or "none of them"
    lines = [
        "## How it was run", "",
        f"- command: `{results['command']}`",
        f"- started {results['started']}, wall time {results.get('wall_s', 0):.0f} s; "
        f"1-minute load average {_load(results['load_start'])} at start, {_load(results.get('load_end'))} at end "
        f"({env['logical_cpus']} logical CPUs, shared)",
        f"- CPU: {env['cpu']}; {env['platform']}; Python {env['python']}",
        f"- ferry source: {env.get('ferry_source', 'unknown')}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        f"- ferry's compiled kernels (ferry.runtime.kernels._native): {env.get('native_kernels', 'unknown')}",
        f"- threads: {env['threads']} for every engine (ferry: BLAS pool limited with threadpoolctl, "
        f"compiled kernels' pool set to the same; "
        f"onnxruntime: intra_op_num_threads={env['threads']}, inter_op 1; torch: set_num_threads({env['torch_threads']}))",
        f"- OpenBLAS variables unset by the wrapper: {env['unset_by_wrapper'].strip() or 'nothing (not run through bench/run.sh)'}; "
        f"seen by the process: {seen}",
        "- settings: " + ", ".join(f"{k}={v}" for k, v in results["settings"].items()),
        "", "BLAS / OpenMP pools (threadpoolctl.threadpool_info(), after importing numpy and torch):", "",
        "| user_api | internal_api | prefix | version | threads | threading | architecture |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in pools:
        lines.append(f"| {p['user_api']} | {p['internal_api']} | {p['prefix']} | {p.get('version') or '-'} | "
                     f"{p['num_threads']} | {p.get('threading_layer') or '-'} | {p.get('architecture') or '-'} |")
    return lines


def latency(results: dict) -> list[str]:
    lines = [
        "## Latency (ms, median / p90 per call)", "",
        "(T) = the file from `torch.onnx.export`, (F) = the file from `ferry.export`. "
        "Ratios are of medians. `rounds` = timed round-robin rounds (each engine once per round). "
        "`others` = cores used by other processes, sampled in the pauses between calls.", "",
        "| model | batch | " + " | ".join(SHORT) + " | ferry/ORT (T) | ferry/ORT (F) | rounds | others |",
        "|---|---:|" + "---:|" * len(SHORT) + "---:|---:|---:|---:|",
    ]
    for record in results["models"].values():
        for batch, timing in record["batches"].items():
            engines = timing["engines"]
            cells = [_cell(engines.get(label)) for label in LABELS]
            rounds = max((e.get("samples", 0) for e in engines.values()), default=0)
            lines.append(
                f"| {record['title']} | {batch} | " + " | ".join(cells)
                + f" | {_ratio(engines.get(LABELS[0]), engines.get(LABELS[2]))}"
                + f" | {_ratio(engines.get(LABELS[1]), engines.get(LABELS[3]))}"
                + f" | {rounds} | {_cores(timing.get('other_cores'))} |"
            )
    return lines


def spinning(results: dict) -> list[str]:
    rows = []
    for record in results["models"].values():
        for batch, timing in record["batches"].items():
            values = [timing["engines"].get(label, {}).get("settle_ms") for label in LABELS]
            if any(v is not None for v in values):
                rows.append(f"| {record['title']} | {batch} | "
                            + " | ".join("-" if v is None else f"{v:.0f}" for v in values) + " |")
    if not rows:
        return []
    return ["## Pause after each call (ms, median)", "",
            "How long after a call this process kept using CPU (worker threads spinning before "
            "they sleep), i.e. how long the harness waited before the next engine's call "
            "(at least --gap, at most 500 ms).", "",
            "| model | batch | " + " | ".join(SHORT) + " |", "|---|---:|" + "---:|" * len(SHORT), *rows]


def _seconds(value) -> str:
    if isinstance(value, dict):
        return "error"
    return "-" if value is None else f"{value * 1e3:.0f}"


def creation(results: dict) -> list[str]:
    lines = [
        "## Export and session creation", "",
        "Session creation: median of repeated `InferenceSession(path)` calls, ms (ferry's includes "
        "loading, `check_model`, its graph optimizer and compiling the plan; 'no check' passes "
        "`check=False`, 'no opt' sets `graph_optimization_level=ORT_DISABLE_ALL`). "
        "Export times include ferry's self-check (`check=True`, the default).", "",
        "| model | torch.onnx.export s | ferry.export s | ferry (T) | ferry (T), no check | ferry (T), no opt "
        "| ORT (T) | ferry (F) | ORT (F) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for record in results["models"].values():
        c = record["creation_s"]
        fe = record["ferry_export"]
        if "error" in fe:
            export = f"failed ({fe['seconds']:.1f})"
            notes.append(f"- {record['title']}: `ferry.export` with a dynamic batch failed: `{fe['error']}` "
                         f"{fe.get('error_at', '')}. Timed instead: a static-shape `ferry.export` per batch "
                         f"(check=False){'; errors: ' + str(fe['static_errors']) if fe.get('static_errors') else ''}.")
        else:
            export = f"{fe['seconds']:.1f}"
        lines.append(f"| {record['title']} | {record['torch_export']['seconds']:.1f} | {export} | "
                     f"{_seconds(c.get('ferry:torch'))} | {_seconds(c.get('ferry:torch:nocheck'))} | "
                     f"{_seconds(c.get('ferry:torch:noopt'))} | "
                     f"{_seconds(c.get('ort:torch'))} | {_seconds(c.get('ferry:ferry'))} | {_seconds(c.get('ort:ferry'))} |")
    return lines + ([""] + notes if notes else [])


def accuracy(results: dict) -> list[str]:
    lines = ["## Agreement with torch (max |difference| of the first output)", "",
             "| model | batch | " + " | ".join(SHORT[:4]) + " |", "|---|---:|" + "---:|" * 4]
    for record in results["models"].values():
        for batch, timing in record["batches"].items():
            cells = []
            for label in LABELS[:4]:
                value = timing["engines"].get(label, {}).get("max_abs_diff_vs_torch")
                cells.append("-" if value is None else f"{value:.1e}")
            lines.append(f"| {record['title']} | {batch} | " + " | ".join(cells) + " |")
    return lines


def memory(results: dict) -> list[str]:
    rows = [(r["title"], r["memory"]) for r in results["models"].values() if "memory" in r]
    if not rows:
        return []
    lines = [
        "## Memory (MiB; torch.onnx file; a fresh process per engine)", "",
        "session = RSS after creating the session (torch: building the module) minus RSS before; "
        "creation peak = peak RSS while creating it, minus RSS before; run peak = peak RSS over the "
        "runs minus RSS before them (peaks: /proc/self/status VmHWM, reset through "
        "/proc/self/clear_refs before each phase); tracemalloc (ferry only) = peak of numpy/Python "
        "allocations during one run.", "",
        "| model | batch | engine | session | creation peak | run peak | tracemalloc |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]

    def get(entry: dict, key: str) -> str:
        value = entry.get(key)
        return "-" if value is None else f"{value:.0f}"

    errors = []
    for title, mem in rows:
        for engine in ("ferry", "onnxruntime", "torch"):
            entry = mem.get(engine, {})
            if "error" in entry:
                errors.append(f"- {title} {engine}: {entry['error']}")
                continue
            lines.append(f"| {title} | {mem['batch']} | {engine} | {get(entry, 'session_mib')} | "
                         f"{get(entry, 'create_peak_mib')} | {get(entry, 'run_peak_mib')} | "
                         f"{get(entry, 'tracemalloc_peak_mib')} |")
    return lines + ([""] + errors if errors else [])


def reference(results: dict) -> list[str]:
    rows = [r for r in results["models"].values() if "reference" in r]
    if not rows:
        return []
    lines = ["## onnx ReferenceEvaluator (batch 1, torch.onnx file)", "",
             "| model | ReferenceEvaluator ms | runs | ferry ms (same file) | speed-up of ferry | target |",
             "|---|---:|---:|---:|---:|---:|"]
    for record in rows:
        ref = record["reference"]
        ferry = record["batches"].get(1, {}).get("engines", {}).get(LABELS[0], {})
        speed = f"{ref['median_ms'] / ferry['median_ms']:.1f}x" if ferry.get("median_ms") else "-"
        lines.append(f"| {record['title']} | {ms(ref['median_ms'])} | {ref['runs']} | "
                     f"{ms(ferry.get('median_ms'))} | {speed} | 15x |")
    return lines


def profiles(results: dict) -> list[str]:
    lines = []
    for record in results["models"].values():
        for source, prof in record.get("profile", {}).items():
            kind, _, batch = source.partition("@")
            file = "torch.onnx file" if kind == "torch" else "ferry file"
            lines += [
                f"### {record['title']}, {file}, batch {batch or 1}", "",
                f"{prof['steps']} steps; run {ms(prof['wall_ms'])} ms (median of {prof['runs']}); kernels "
                f"{ms(prof['kernel_ms'])} ms (sum of per-step medians); outside kernels "
                f"{ms(prof['overhead_ms'])} ms (median over runs of run time minus its kernel time).", "",
                "| op | nodes | ms | share of kernel time |", "|---|---:|---:|---:|",
            ]
            for op in prof["ops"][:8]:
                lines.append(f"| {op['op']} | {op['count']} | {ms(op['ms'])} | {op['share'] * 100:.1f}% |")
            lines += ["", "Slowest nodes: " + "; ".join(
                f"`{n['name']}` {n['op']} {ms(n['ms'])} ms ({n['inputs']})" for n in prof["top_nodes"][:4]), ""]
    return (["## Where ferry's time goes (per-step profile)", ""] + lines) if lines else []


def render(results: dict) -> str:
    sections = [["# ferry benchmark"], latency(results), spinning(results), creation(results), memory(results),
                reference(results), accuracy(results), profiles(results), header(results)]
    return "\n".join("\n".join(s) + "\n" for s in sections if s)

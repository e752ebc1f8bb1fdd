"""``vq demo`` step 19: genetic strategy discovery on the sample (search, guard rails, export, reproduce)."""

from __future__ import annotations

import datetime as dt
import time

from vibe_quant.cli.context import console, state

out = console()


def demo_discover(h, specs) -> tuple[int, bool]:
    """Search FILUSDT 15m strategies on 2023-08-01..10-09 (the last 22 days held out), judge the finalists, export
    them as DSL YAML and re-run the first through the path `vq backtest run` takes; return the run id and whether
    that run reproduced the stored metrics exactly."""
    import msgspec

    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.backtest.service import execute
    from vibe_quant.discovery import service
    from vibe_quant.discovery.config import DiscoveryConfig, GuardRails
    from vibe_quant.dsl.loader import load_file
    from vibe_quant.present.discovery import generation_line, print_result
    from vibe_quant.progress import rich_progress
    from vibe_quant.screening.check import metric_differences
    from vibe_quant.screening.pareto import HardFilters

    # Three months of one symbol: the 50-trade hard filter (docs/specs.md#screening-hard-filters) is lowered to 20, as in the
    # screening step.
    config = DiscoveryConfig(symbols=("FILUSDT",), timeframe="15m", start=dt.date(2023, 8, 1), end=dt.date(2023, 10, 31),
                             holdout_days=22, population=24, generations=5, seed=7, filters=HardFilters(min_trades=20),
                             guards=GuardRails(finalists=3, baselines=16))  # fmt: skip
    run_id = service.start(h, config, specs)
    out.print(f"discovery run {run_id}: population {config.population}, {config.generations} generations, training "
              f"{config.start}..{config.train_end}, held out {config.holdout_start}..{config.end} (never seen by the search)")  # fmt: skip
    t0 = time.perf_counter()
    with rich_progress(not state.quiet) as progress:
        task = progress.task(f"discovery run {run_id}", None)
        result = service.run(h, run_id, workers=2, on_progress=lambda stage, n, total: progress.update(task, n, total),
                             on_generation=lambda g: out.print(generation_line(g)))  # fmt: skip
    out.print(f"{result.search.evaluated} genomes evaluated, {result.search.cache_hits} answered by the cache, "
              f"{time.perf_counter() - t0:.1f}s (search and guard rails)")  # fmt: skip
    print_result(result, out)
    if not result.finalists:
        return run_id, True
    paths = service.export(h, run_id, h.runs / f"discovery-{run_id}" / "export", include_rejected=True)
    out.print(f"exported {len(paths)} finalist(s) as DSL YAML (rejected ones for review): {paths[0].parent}")
    first = result.finalists[0]
    analysis = load_file(paths[0])  # what `vq dsl validate` checks
    document = msgspec.to_builtins(analysis.doc)
    row, backtest, _ = execute(h, plan_run(config.backtest(document, config.start, config.train_end)), specs)
    # Every metric of the point, to 1e-9 relative (summation order may differ between the engines, nothing else).
    differ = metric_differences(first["genome"]["metrics"], backtest.metrics)
    same = not differ
    out.print(f"reproduce: {paths[0].name} on NautilusTrader (`vq backtest run --strategy {paths[0]} "
              f"{service.reproduce_args(config)}`, run {row}): "
              + ("[green]identical metrics[/]" if same else f"[red]DIFFERENT metrics[/] {differ[:3]}")
              + f" (Sharpe {backtest.metrics['sharpe_ratio']:.4f}, {backtest.metrics['total_trades']} trades)")  # fmt: skip
    return run_id, same

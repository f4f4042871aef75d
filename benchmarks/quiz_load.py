"""A whole class at once: N students take the same quiz on one server, through real browser sessions.

Starts `streamlit run` as a hosted copy (no data folder), then opens N Playwright browser contexts (one
headless chromium, Debian's) on the same teacher's link `/quiz?seed=S&n=K`, all at the same moment. Each
student answers every case; the time from clicking "Commit my answers" to the reveal (the truth and the
model's answer on screen) is recorded. Prints p50/p95 of that time, the sessions that failed, and the
server's RSS (peak and at the end).

The baseline, run in the same command, is one student alone on a fresh server: the ratio says what the
crowd costs. Goal (issue "Teaching mode"): p95 <= 2 s for 30 students, no failed session, RSS within the
hosted-demo budget (600 MB).

    python benchmarks/quiz_load.py [--students 30] [--cases 3] [--seed 7]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.app_server import CHROMIUM, CHROMIUM_ARGS, IDLE_JS, ROOT, rss_mb, streamlit_server  # noqa: E402

LOGS = ROOT / "test-artifacts"
TIMEOUT_MS = 300_000
GOALS = {"p95_s": 2.0, "rss_mb": 600.0}


async def _idle(page) -> None:
    await page.wait_for_function(IDLE_JS, timeout=TIMEOUT_MS)
    await page.wait_for_timeout(150)


async def _answer_case(page, number: int, total: int) -> float:
    """Pick the first diagnosis and the first call, commit, and time the reveal."""
    await page.get_by_text(f"Case {number} of {total}").wait_for(timeout=TIMEOUT_MS)
    await _idle(page)
    await page.get_by_role("radiogroup", name="Your diagnosis").get_by_role("radio").first.check(force=True)
    await page.get_by_role("radiogroup", name="Your management call").get_by_role("radio").first.check(force=True)
    started = time.perf_counter()
    await page.get_by_role("button", name="Commit my answers").click(timeout=TIMEOUT_MS)
    await page.get_by_text("Truth:").first.wait_for(timeout=TIMEOUT_MS)
    seconds = time.perf_counter() - started
    await _idle(page)
    await page.get_by_role("button", name="Next case" if number < total else "See my result").click(timeout=TIMEOUT_MS)
    return seconds


async def _student(browser, url: str, cases: int) -> list[float]:
    context = await browser.new_context(viewport={"width": 1200, "height": 1600})
    page = await context.new_page()
    try:
        await page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
        times = [await _answer_case(page, n, cases) for n in range(1, cases + 1)]
        await page.get_by_text("Your result").first.wait_for(timeout=TIMEOUT_MS)
        return times
    finally:
        await context.close()


async def _class(url: str, students: int, cases: int) -> tuple[list[float], list[str], float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        started = time.perf_counter()
        results = await asyncio.gather(*(_student(browser, url, cases) for _ in range(students)),
                                       return_exceptions=True)
        wall = time.perf_counter() - started
        await browser.close()
    times = [t for r in results if isinstance(r, list) for t in r]
    errors = [f"{type(r).__name__}: {str(r).splitlines()[0] if str(r) else ''}" for r in results if isinstance(r, BaseException)]
    return times, errors, wall


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to tell a busy server from busy browsers."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(students: int, cases: int, seed: int) -> dict:
    """One fresh hosted-copy server, `students` sessions at once; the figures of that run."""
    env = {"DERMLAB_DATA_DIR": tempfile.mkdtemp(prefix="dermlab-no-data-")}
    with streamlit_server(LOGS / f"quiz_load_{students}.log", env) as (url, process, _):
        cpu_before = cpu_seconds(process.pid)
        times, errors, wall = asyncio.run(_class(f"{url}/quiz?seed={seed}&n={cases}", students, cases))
        server_cpu = cpu_seconds(process.pid) - cpu_before
        current, peak = rss_mb(process.pid)
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))] if ordered else float("nan")
    return {"students": students, "answers": len(times), "p50": statistics.median(times) if times else float("nan"),
            "p95": p95, "max": max(times, default=float("nan")), "errors": errors, "wall": wall,
            "rss": current, "peak": peak, "server_cpu": server_cpu}


def _line(name: str, r: dict) -> str:
    return (f"{name}: {r['students']} student(s), {r['answers']} answers in {r['wall']:.0f} s; answer -> reveal "
            f"p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s, max {r['max']:.2f} s; failed sessions {len(r['errors'])}; "
            f"server RSS {r['rss']:.0f} MB (peak {r['peak']:.0f} MB); the server used {r['server_cpu']:.0f} CPU-s of "
            f"the {2 * r['wall']:.0f} the 2 cores had (the browsers share them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    alone = run(1, args.cases, args.seed)
    print(_line("baseline, one student alone", alone), flush=True)
    crowd = run(args.students, args.cases, args.seed)
    print(_line("the class at once", crowd), flush=True)
    for error in crowd["errors"]:
        print(f"  failed session: {error}")
    print(f"ratio class / alone: p50 {crowd['p50'] / alone['p50']:.2f}, p95 {crowd['p95'] / alone['p95']:.2f}, "
          f"peak RSS {crowd['peak'] / alone['peak']:.2f}")
    met = crowd["p95"] <= GOALS["p95_s"] and not crowd["errors"] and crowd["peak"] <= GOALS["rss_mb"]
    print(f"goals (p95 <= {GOALS['p95_s']:.0f} s, no failed session, peak RSS <= {GOALS['rss_mb']:.0f} MB): "
          f"{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()

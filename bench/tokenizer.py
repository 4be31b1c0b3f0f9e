"""The token counter's cost: python bench/tokenizer.py [--mb 1]

Prints, for kimi.usage and (when importable, as in the test venv) tiktoken with the same
o200k_base table: the time to load the table and the resident memory it adds (each in a fresh
process, VmRSS after gc before and after loading), then encoding speed in MB/s of UTF-8 on
about --mb MB of English prose (README.md), Chinese prose and Python code (kimi/). Figures
only; nothing is asserted. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import base64
import gc
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHINESE = (
    "城市的清晨总是从一杯热豆浆开始。街角的小店六点就开门了，老板一边炸油条，一边和熟客聊天，"
    "说昨天的雨下得太突然，地铁站口挤满了没带伞的人。年轻人低头看手机，查看今天的天气预报和"
    "上班路线；退休的老人则在公园里打太极拳，动作缓慢而从容。近几年，越来越多的公司允许员工"
    "在家办公，于是咖啡馆里多了许多带着笔记本电脑的人，他们在屏幕前开会、写代码、修改方案。"
    "有人说这种生活方式更自由，也有人担心工作和生活的边界变得模糊。无论如何，技术正在改变我们"
    "理解时间和空间的方式：一条消息可以在几毫秒内穿过大洋，一份文件可以同时被十几个人编辑。"
    "然而，真正让人感到温暖的，仍然是面对面的交谈、一顿简单的晚饭，以及朋友之间那句“最近好吗？”。"
    "\n\n"
)


def rss_mb() -> float:
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tiktoken_encoding():
    import tiktoken
    from kimi.usage import O200K_PATTERN
    data = gzip.decompress((ROOT / "kimi/usage/o200k_base.tiktoken.gz").read_bytes())
    ranks = {base64.b64decode(token): int(rank)
             for token, rank in (line.split() for line in data.splitlines() if line)}
    enc = tiktoken.Encoding("o200k_base", pat_str=O200K_PATTERN, mergeable_ranks=ranks,
                            special_tokens={})
    enc._mergeable_ranks = {}   # as the gateway did: the Rust core keeps its own copy
    del data, ranks
    return enc


def load_figures(which: str) -> None:
    """In a fresh process: print {seconds, mb} for loading one tokenizer."""
    import kimi.usage
    if which == "tiktoken":
        import tiktoken  # noqa: F401  (the import itself is not what is measured)
    before, start = rss_mb(), time.perf_counter()
    counter = kimi.usage.load_counter() if which == "ours" else tiktoken_encoding()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "mb": rss_mb() - before}))
    del counter


def corpus(mb: float) -> dict[str, str]:
    def repeat(text: str) -> str:
        size = len(text.encode())
        return text * max(1, round(mb * 1024 * 1024 / size))
    code = "".join(p.read_text() for p in sorted((ROOT / "kimi").rglob("*.py")))
    return {"English": repeat((ROOT / "README.md").read_text()), "Chinese": repeat(CHINESE),
            "code": repeat(code)}


def speed(encode, text: str) -> float:
    start = time.perf_counter()
    encode(text)
    return len(text.encode()) / (time.perf_counter() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0)
    parser.add_argument("--load", choices=("ours", "tiktoken"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        return load_figures(args.load)
    try:
        import tiktoken  # noqa: F401
        names = ("ours", "tiktoken")
    except ImportError:
        names = ("ours",)
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--load", name], capture_output=True,
                             text=True, check=True).stdout
        figures = json.loads(out)
        print(f"{name:9} load {figures['seconds']:.2f} s, +{figures['mb']:.1f} MB RSS")
    from kimi.usage import load_counter
    encoders = {"ours": load_counter().encode}
    if "tiktoken" in names:
        encoders["tiktoken"] = tiktoken_encoding().encode_ordinary
    texts = corpus(args.mb)
    for label, text in texts.items():
        if "tiktoken" in encoders and encoders["ours"](text) != encoders["tiktoken"](text):
            print(f"{label}: the two tokenizers disagree")
        line = ", ".join(f"{name} {speed(encode, text):6.2f} MB/s"
                         for name, encode in encoders.items())
        print(f"{label:8} {len(text.encode()) / 1e6:.2f} MB: {line}")


if __name__ == "__main__":
    main()

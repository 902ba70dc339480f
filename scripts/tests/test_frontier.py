"""The static-frontier campaign's pieces (scripts/results-frontier.sh): the
random program generator, and the stored runs and page of `kairos report`,
on a few programs."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAIROS = ROOT / "target/release/kairos"


def generate(out, seed, count=4):
    subprocess.run([sys.executable, str(ROOT / "scripts/gen_workloads.py"), "--seed", str(seed),
                    "--count", str(count), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return {p.name: p.read_text() for p in sorted(out.glob("*.toml"))}


def test_programs_follow_the_seed_and_every_one_writes(tmp_path):
    a = generate(tmp_path / "a", seed=3)
    assert a == generate(tmp_path / "b", seed=3)
    assert a != generate(tmp_path / "c", seed=4)
    assert len(a) == 4
    assert all('kind = "write"' in text for text in a.values())
    # A second run into the same directory replaces, never accumulates.
    assert len(generate(tmp_path / "a", seed=5, count=2)) == 2


def test_rejects_a_count_below_one(tmp_path):
    rc = subprocess.run([sys.executable, str(ROOT / "scripts/gen_workloads.py"), "--seed", "1",
                         "--count", "0", "--out", str(tmp_path)], capture_output=True).returncode
    assert rc == 2


def test_the_page_accounts_for_every_program(tmp_path):
    sets = []
    for seed in (3, 4):
        generate(tmp_path / f"s{seed}/workloads", seed=seed)
        for weight in (3, 30):
            with open(tmp_path / f"s{seed}/sim-w{weight}.jsonl", "w") as f:
                subprocess.run([str(KAIROS), "sim", "--suite", str(tmp_path / f"s{seed}/workloads"),
                                "--policy", "predictive,qemu@300,qemu@1000,auto-converge",
                                "--downtime-weight", str(weight), "--json"],
                               check=True, stdout=f, stderr=subprocess.DEVNULL)
            sets += ["--sim", f"{seed}={tmp_path / f's{seed}/sim-w{weight}.jsonl'}"]
    records = tmp_path / "frontier.jsonl.gz"
    subprocess.run([str(KAIROS), "report", "pack-sim", *sets, "--out", str(records)],
                   check=True, stderr=subprocess.DEVNULL)
    page = tmp_path / "frontier.md"
    subprocess.run([str(KAIROS), "report", "frontier", "--records", str(records),
                    "--page", str(page), "--design-sets", "4"],
                   check=True, stderr=subprocess.DEVNULL)
    text = page.read_text()
    rows = re.findall(r"^\| (\d) \| (3|30) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| [-0-9.]+ \| (\d+) \|",
                      text, re.M)
    assert [(r[0], r[1]) for r in rows] == [("3", "3"), ("3", "30"), ("4", "3"), ("4", "30")], text
    for _, _, ended, cheaper, same, dearer, none in rows:
        assert int(ended) + int(none) == 4
        assert int(cheaper) + int(same) + int(dearer) == int(ended)
    assert "the sets of seeds 4 have been used to choose between designs" in text
    # The page is what its stored runs give: --check passes, then fails on
    # an edited page.
    check = [str(KAIROS), "report", "frontier", "--records", str(records), "--page", str(page),
             "--design-sets", "4", "--check"]
    assert subprocess.run(check, capture_output=True).returncode == 0
    page.write_text(text.replace("| 3 | 3 |", "| 3 | 3.0 |"))
    assert subprocess.run(check, capture_output=True).returncode == 1


def test_packing_rejects_a_malformed_set(tmp_path):
    # A spec that is not SET=FILE is a usage error (2); a file that cannot
    # be read fails the run (1).
    for spec, code in (("x", 2), ("=f", 2), ("7=", 2), (f"7={tmp_path / 'missing.jsonl'}", 1)):
        rc = subprocess.run([str(KAIROS), "report", "pack-sim", "--sim", spec,
                             "--out", str(tmp_path / "r.jsonl.gz")],
                            capture_output=True).returncode
        assert rc == code, spec
    assert not (tmp_path / "r.jsonl.gz").exists()


def test_a_fixed_guest_size_keeps_the_draws(tmp_path):
    drawn = generate(tmp_path / "drawn", seed=6)
    out = tmp_path / "fixed"
    subprocess.run([sys.executable, str(ROOT / "scripts/gen_workloads.py"), "--seed", "6",
                    "--count", "4", "--ram-mib", "4096", "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    fixed = {p.name: p.read_text() for p in sorted(out.glob("*.toml"))}
    assert fixed.keys() == drawn.keys()
    for text in fixed.values():
        assert "ram_mib = 4096" in text
        sizes = [float(m) for m in re.findall(r"wss_mib = (\d+)", text)]
        assert all(s <= (4096 - 64) / 2 + 1 for s in sizes)
    # The same seed draws the same phases' kinds and lengths either way.
    kinds = lambda t: re.findall(r'kind = "(\w+)"', t)
    assert [kinds(t) for t in fixed.values()] == [kinds(t) for t in drawn.values()]


def test_the_first_generator_is_kept_and_the_second_draws_the_new_models(tmp_path):
    def gen(version, out):
        subprocess.run([sys.executable, str(ROOT / "scripts/gen_workloads.py"), "--seed", "12",
                        "--count", "30", "--generator", str(version), "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        return "".join(p.read_text() for p in sorted(out.glob("*.toml")))
    first, second = gen(1, tmp_path / "g1"), gen(2, tmp_path / "g2")
    assert "hot-cold" not in first and "wss_end_mib" not in first
    assert 'pattern = "hot-cold"' in second and "wss_end_mib" in second
    assert "[link]" in second and "[link]" not in first
    # Every program of the second generator is one the simulator takes.
    rc = subprocess.run([str(KAIROS), "sim", "--suite", str(tmp_path / "g2"), "--policy", "qemu",
                         "--time-cap-s", "30"], capture_output=True).returncode
    assert rc == 0


def test_a_threshold_page_measures_against_the_best_static_limit(tmp_path):
    """In the simulator's threshold model there is no exact oracle; the
    page says its bound is each program's best static limit, and a page
    that mixes the two models is refused."""
    generate(tmp_path / "w", seed=3)
    sets = []
    for sync in ("threshold", "full-pass"):
        with open(tmp_path / f"sim-{sync}.jsonl", "w") as f:
            subprocess.run([str(KAIROS), "sim", "--suite", str(tmp_path / "w"), "--sync", sync,
                            "--policy", "predictive,qemu@300,qemu@1000", "--downtime-weight", "10",
                            "--json"], check=True, stdout=f, stderr=subprocess.DEVNULL)
        sets.append(["--sim", f"3={tmp_path / f'sim-{sync}.jsonl'}"])

    def page(packs, name):
        records = tmp_path / f"{name}.jsonl.gz"
        subprocess.run([str(KAIROS), "report", "pack-sim", *packs, "--out", str(records)],
                       check=True, stderr=subprocess.DEVNULL)
        out = tmp_path / f"{name}.md"
        proc = subprocess.run([str(KAIROS), "report", "frontier", "--records", str(records),
                               "--page", str(out)], capture_output=True, text=True)
        return proc, out

    proc, out = page(sets[0], "threshold")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "Regret to each program's best static limit" in text
    assert "`kairos sim --sync threshold`" in text
    assert "exact oracle (" not in text
    proc, out = page(sets[1], "full-pass")
    assert proc.returncode == 0, proc.stderr
    assert "Regret to the exact oracle" in out.read_text()
    proc, out = page(sets[0] + sets[1], "mixed")
    assert proc.returncode == 1
    assert "mix the simulator's sync models" in proc.stderr


def test_the_third_generator_draws_span_writes_the_simulator_takes(tmp_path):
    out = tmp_path / "g3"
    subprocess.run([sys.executable, str(ROOT / "scripts/gen_workloads.py"), "--seed", "12",
                    "--count", "30", "--generator", "3", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    text = "".join(p.read_text() for p in sorted(out.glob("*.toml")))
    spans = [int(k) for k in re.findall(r"^write_kib = (\d+)$", text, re.M)]
    assert spans, "no program of 30 writes spans"
    assert all(k & (k - 1) == 0 and 8 <= k <= 2048 for k in spans), spans
    assert 'pattern = "hot-cold"' in text
    rc = subprocess.run([str(KAIROS), "sim", "--suite", str(out), "--policy", "qemu",
                         "--sync", "threshold", "--time-cap-s", "30"],
                        capture_output=True).returncode
    assert rc == 0

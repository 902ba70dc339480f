//! End-to-end checks of the `kairos` CLI that need no QEMU: a simulated
//! comparison, a trace written by the simulator and read back by replay,
//! clear errors and the documented exit codes on bad input. Each check is
//! its own test, so a failure names it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn kairos() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kairos"));
    cmd.current_dir(repo());
    cmd
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testbed/ is inside the repository")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run kairos")
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn by_policy<'a>(rows: &'a [Value], policy: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["policy"] == policy)
        .unwrap_or_else(|| panic!("no {policy} row in {rows:?}"))
}

#[test]
fn sim_json_has_the_shared_vocabulary_and_costs() {
    let out = run(kairos().args([
        "sim",
        "--workload",
        "testbed/workloads/hot-wss.toml",
        "--policy",
        "qemu,qemu@1000,predictive",
        "--time-cap-s",
        "60",
        "--json",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out);
    let predictive = by_policy(&rows, "predictive");
    for key in [
        "workload",
        "policy",
        "status",
        "rounds",
        "total_time_ms",
        "downtime_ms",
        "transferred_bytes",
        "app_loss_pct",
        "downtime_weight",
        "cost_ms",
        "oracle",
        "regret",
    ] {
        assert!(predictive.get(key).is_some(), "no {key} in {predictive}");
    }
    assert_eq!(by_policy(&rows, "qemu")["status"], "timed-out");
    assert_eq!(predictive["status"], "completed");
    assert!(predictive["downtime_ms"].as_f64().unwrap() <= 1000.0);
    assert_eq!(by_policy(&rows, "qemu@1000")["status"], "completed");
    assert!(predictive["regret"].as_f64().unwrap() >= 1.0 - 1e-9);
}

#[test]
fn the_trace_the_simulator_writes_replays() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(kairos()
        .args([
            "sim",
            "--workload",
            "testbed/workloads/hot-wss.toml",
            "--policy",
            "predictive",
            "--time-cap-s",
            "30",
            "--trace-dir",
        ])
        .arg(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = dir.path().join("hot-wss.observe.csv");
    assert!(trace.exists(), "no trace written");
    let out = run(kairos()
        .args(["replay", "--trace"])
        .arg(&trace)
        .args(["--policy", "all", "--json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out);
    assert!(rows.len() >= 8, "one line per policy: {rows:?}");
    assert_eq!(by_policy(&rows, "predictive")["status"], "completed");
}

#[test]
fn forecast_quality_and_pareto_plots_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(kairos()
        .args([
            "sim",
            "--workload",
            "testbed/workloads/phase-change.toml",
            "--policy",
            "qemu,predictive",
            "--forecast-quality",
            "--json",
            "--plot-dir",
        ])
        .arg(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out);
    let quality = rows
        .iter()
        .find_map(|r| r.get("forecast_quality"))
        .expect("a forecast_quality line");
    assert!(quality["pending_1"]["count"].as_u64().unwrap() > 0);
    let png = dir.path().join("phase-change-pareto.png");
    assert!(std::fs::metadata(png).unwrap().len() > 10_000);
}

/// A command that must fail with `code` and mention `pattern` on stderr.
fn expect_error(args: &[&str], code: i32, pattern: &str) {
    let out = run(kairos().args(args));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        stderr.contains(pattern),
        "{args:?}: '{pattern}' not in: {stderr}"
    );
}

#[test]
fn a_bad_workload_file_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nram_mib = 1024\n[[phase]]\nkind = \"write\"\nseconds = 5\nwss_mib = 4000\nrate_mib_s = 10\n",
    )
    .unwrap();
    expect_error(
        &["sim", "--workload", bad.to_str().unwrap()],
        1,
        "phase[1].wss_mib",
    );
    expect_error(&["sim", "--workload", "nope.toml"], 1, "nope.toml");
}

#[test]
fn bad_values_are_usage_errors_naming_what_is_known() {
    let idle = "testbed/workloads/idle.toml";
    expect_error(
        &["sim", "--workload", idle, "--policy", "fast"],
        2,
        "unknown policy 'fast'",
    );
    expect_error(
        &["sim", "--workload", idle, "--policy", "qemu@0"],
        2,
        "qemu@0",
    );
    expect_error(
        &["sim", "--workload", idle, "--on-non-convergence", "panic"],
        2,
        "keep-going",
    );
    expect_error(
        &["run", "--workload", "idle", "--policy", "xen"],
        2,
        "simulation only",
    );
    expect_error(
        &["run", "--workload", "idle", "--policy", "dirty-limit"],
        2,
        "dirty ring",
    );
    expect_error(
        &[
            "run",
            "--workload",
            "idle",
            "--policy",
            "predictive",
            "--escalation",
            "dirty-limit",
        ],
        2,
        "dirty ring",
    );
    expect_error(
        &[
            "run",
            "--workload",
            "idle",
            "--policy",
            "predictive",
            "--accel",
            "hvf",
        ],
        2,
        "tcg",
    );
    expect_error(
        &["profile", "--workload", "idle", "--mode", "fast"],
        2,
        "page-sampling",
    );
}

#[test]
fn bad_numbers_are_usage_errors_with_the_flag_or_field_named() {
    let idle = "testbed/workloads/idle.toml";
    expect_error(
        &["sim", "--workload", idle, "--bandwidth-mbit", "0"],
        2,
        "bandwidth-mbit",
    );
    expect_error(
        &["sim", "--workload", idle, "--max-downtime-ms", "10"],
        2,
        "max_downtime_ms",
    );
    expect_error(
        &["sim", "--workload", idle, "--downtime-weight=-1"],
        2,
        "downtime_weight",
    );
    expect_error(
        &["profile", "--workload", "nope"],
        2,
        "unknown workload 'nope'",
    );
    expect_error(
        &["profile", "--workload", "idle", "--duration-s", "0"],
        2,
        "--duration-s",
    );
    expect_error(
        &[
            "profile",
            "--workload",
            "idle",
            "--overhead",
            "--window-s",
            "2",
        ],
        2,
        "--window-s must be at least 5",
    );
    expect_error(
        &[
            "profile",
            "--workload",
            "idle",
            "--overhead",
            "--pairs",
            "0",
        ],
        2,
        "--pairs must be at least 1",
    );
    expect_error(
        &["compare", "--suite", "idle", "--oracle-s=-1"],
        2,
        "--oracle-s",
    );
    expect_error(
        &["compare", "--suite", "idle", "--downtime-weights", "3,x"],
        2,
        "--downtime-weights",
    );
}

#[test]
fn a_bad_trace_header_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "round,time_ms\n1,2\n").unwrap();
    expect_error(&["replay", "--trace", bad.to_str().unwrap()], 1, "bad.csv");
}

#[test]
fn help_lists_possible_values_and_exit_codes() {
    let out = run(kairos().args(["run", "--help"]));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Possible values:") && help.contains("- kvm"),
        "{help}"
    );
    assert!(help.contains("Examples:"), "{help}");
    let out = run(kairos().arg("--help"));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("130 interrupted"), "{help}");
}

/// `kairos evacuate --simulate --policy qemu --json` with `args`: its rows.
fn evacuate_rows(args: &[&str]) -> Vec<Value> {
    let out = run(kairos()
        .args(["evacuate", "--simulate", "--policy", "qemu", "--json"])
        .args(args));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out)
}

#[test]
fn an_evacuation_compares_the_usual_concurrencies() {
    let rows = evacuate_rows(&[
        "--guests",
        "testbed/workloads/static-small.toml,testbed/workloads/idle.toml",
        "--copies",
        "2",
        "--time-cap-s",
        "120",
        "--warmup-s",
        "10",
    ]);
    // 1, 2 at a time in three orders each (as listed, random, shortest
    // predicted first); 4 = all for four guests, once; and the planner's,
    // with and without each guest's advice.
    assert_eq!(rows.len(), 9, "{rows:?}");
    assert_eq!(
        rows.iter()
            .filter(|r| r["order"] == "shortest predicted first")
            .count(),
        2
    );
    assert_eq!(rows.iter().filter(|r| r["plan"] == "planned").count(), 1);
    assert_eq!(
        rows.iter()
            .filter(|r| r["plan"] == "planned-advised")
            .count(),
        1
    );
    let makespan = |row: &Value| row["score"]["makespan_s"].as_f64().unwrap();
    for row in &rows {
        assert_eq!(row["guests"], 4);
        assert_eq!(row["score"]["failed"], 0, "{row}");
        // The bound: no plan ends before every guest's bulk has crossed.
        let bound_s = row["bound_s"].as_f64().unwrap();
        assert!(bound_s > 0.0 && makespan(row) >= bound_s, "{row}");
        assert_eq!(row["runs"].as_array().map(Vec::len), Some(4), "{row}");
        assert_eq!(row["setup"]["programs"][0], "static-small", "{row}");
    }
    // Only the planner's plan when asked.
    let rows = evacuate_rows(&[
        "--guests",
        "testbed/workloads/idle.toml",
        "--copies",
        "2",
        "--time-cap-s",
        "60",
        "--warmup-s",
        "5",
        "--plans",
        "planned",
    ]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["plan"], "planned");
    expect_error(
        &[
            "evacuate",
            "--simulate",
            "--guests",
            "testbed/workloads/idle.toml",
            "--copies",
            "0",
        ],
        2,
        "--copies",
    );
    expect_error(
        &[
            "evacuate",
            "--simulate",
            "--guests",
            "testbed/workloads/idle.toml",
            "--plans",
            "best",
        ],
        2,
        "--plans",
    );
    expect_error(
        &[
            "evacuate",
            "--simulate",
            "--guests",
            "testbed/workloads/idle.toml",
            "--hosts",
            "0",
        ],
        2,
        "--hosts",
    );
}

/// `kairos evacuate` from libvirt's test driver (in the library, no
/// daemon) to itself, with `extra`.
fn evacuate_test_driver(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "evacuate",
        "--connect",
        "test:///default",
        "--to",
        "test:///default",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn a_live_evacuation_needs_both_hosts_and_a_plan_it_knows() {
    expect_error(
        &["evacuate", "--guests", "testbed/workloads/idle.toml"],
        2,
        "--simulate",
    );
    expect_error(&["evacuate", "--connect", "test:///default"], 2, "--to");
    for (extra, code, says) in [
        (&["--at-a-time", "0"][..], 2, "planned, all or a number"),
        (&["--guests", "x.toml"][..], 2, "--connect"),
        (&["--policy", "qemu,predictive"][..], 2, "one policy"),
    ] {
        let args = evacuate_test_driver(extra);
        expect_error(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            code,
            says,
        );
    }
}

/// The test driver runs a domain `test` with no QEMU behind it: the
/// evacuation stops before it migrates anything, saying why.
#[test]
fn a_host_without_qemu_monitors_is_refused_before_anything_moves() {
    // A host that cannot be migrated from fails the run (1); a domain the
    // host does not run is a usage error (2).
    for (extra, code, says) in [
        (&[][..], 1, "its migration parameters"),
        (
            &["--domains", "nosuch"][..],
            2,
            "'nosuch' is not a running domain",
        ),
    ] {
        let args = evacuate_test_driver(extra);
        expect_error(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            code,
            says,
        );
    }
}

#[test]
fn a_rack_drains_its_hosts_through_one_uplink() {
    let evacuate = |uplink_mbit: &str| {
        evacuate_rows(&[
            "--guests",
            "testbed/workloads/static-small.toml",
            "--copies",
            "4",
            "--hosts",
            "2",
            "--uplink-mbit",
            uplink_mbit,
            "--warmup-s",
            "5",
            "--time-cap-s",
            "60",
            "--plans",
            "fixed",
        ])
    };
    let makespan = |rows: &[Value], at_a_time: &str| {
        rows.iter()
            .find(|r| r["at_a_time"] == at_a_time && r["order"] == "as listed")
            .and_then(|r| r["score"]["makespan_s"].as_f64())
            .unwrap()
    };
    let wide = evacuate("2000");
    let narrow = evacuate("1000");
    // Two guests a host: 1 and all (= 2) at a time, in three orders for 1.
    assert_eq!(wide.len(), 4, "{wide:?}");
    for row in wide.iter().chain(&narrow) {
        assert_eq!(row["setup"]["hosts"], 2, "{row}");
        if row["at_a_time"] == "1" {
            assert_eq!(row["score"]["failed"], 0, "{row}");
        }
    }
    // Through an uplink as wide as one host's link, the two hosts send at
    // half the rate: at least about twice as long (more, since a guest
    // that writes dirties more while its rounds take longer).
    let ratio = makespan(&narrow, "1") / makespan(&wide, "1");
    assert!(ratio > 1.9 && ratio < 3.0, "{ratio}");
    // And the bound says so.
    let bound = |rows: &[Value]| rows[0]["bound_s"].as_f64().unwrap();
    assert!((bound(&narrow) / bound(&wide) - 2.0).abs() < 1e-6);
}

//! `chaos --seed S --duration D [--workers N] [--bin-dir DIR] [--run-dir DIR]`: one fault
//! campaign (docs/chaos.md). Prints the plan, progress on stderr, then the report, whose last
//! line is `N passed, M failed`; exits 0 if every check passed, 1 if one failed, 2 if the
//! campaign could not run, 130 on Ctrl-C.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use chaos::{Campaign, Config};

const USAGE: &str =
    "usage: chaos [--seed N] [--duration SECS] [--workers N] [--bin-dir DIR] [--run-dir DIR]";

struct Args {
    seed: u64,
    duration: Duration,
    workers: Option<usize>,
    bin_dir: Option<PathBuf>,
    run_dir: Option<PathBuf>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    // Without --seed, one from the clock: printed first, so the run can be replayed.
    let mut parsed = Args {
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() % 1_000_000),
        duration: Duration::from_secs(180),
        workers: None,
        bin_dir: None,
        run_dir: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => parsed.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--duration" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--duration: {e}"))?;
                if !(1.0..=86_400.0).contains(&secs) {
                    return Err("--duration: between 1 and 86400 seconds".into());
                }
                parsed.duration = Duration::from_secs_f64(secs);
            }
            "--workers" => {
                let n: usize = value()?.parse().map_err(|e| format!("--workers: {e}"))?;
                if n == 0 {
                    return Err("--workers: at least 1".into());
                }
                parsed.workers = Some(n);
            }
            "--bin-dir" => parsed.bin_dir = Some(value()?.into()),
            "--run-dir" => parsed.run_dir = Some(value()?.into()),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let bin_dir = args.bin_dir.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."))
    });
    let run_dir = args
        .run_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("nis-chaos-{}", args.seed)));
    let mut config = match Config::from_env(args.seed, args.duration, bin_dir, run_dir) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chaos: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    let run_dir = config.run_dir.clone();
    let campaign = Campaign::new(config);
    tokio::select! {
        outcome = campaign.run() => match outcome {
            Ok(report) => {
                println!("logs: {}", run_dir.display());
                println!("{report}");
                if report.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
            }
            Err(e) => {
                println!("logs: {}", run_dir.display());
                println!("FAIL run: {e}");
                println!("0 passed, 1 failed");
                ExitCode::from(2)
            }
        },
        _ = tokio::signal::ctrl_c() => {
            eprintln!("chaos: interrupted; stopping what it started (Ctrl-C again to skip dropping the databases)");
            tokio::select! {
                () = campaign.clean_up() => {}
                _ = tokio::signal::ctrl_c() => eprintln!("chaos: databases left in place"),
            }
            ExitCode::from(130)
        }
    }
}

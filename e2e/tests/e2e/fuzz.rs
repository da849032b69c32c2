//! docs/behaviour.md §3.2: both services' OpenAPI documents are valid, and schemathesis
//! (positive and negative data, stateful sequences along the documents' links, seed 42, the
//! small `quick` budget of `scripts/fuzz.sh`) finds no server error and no answer that
//! disagrees with the document, against both services on their real stores.

use std::path::Path;

use e2e::System;

/// Runs `scripts/fuzz.sh run <base> <kind> quick`; its report (every request and response)
/// stays in `.run/fuzz-test/<kind>-quick` for a failure to be read.
async fn fuzz(base: &str, kind: &str) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = tokio::process::Command::new("bash")
        .arg(root.join("scripts/fuzz.sh"))
        .args(["run", base, kind, "quick"])
        .env("NIS_FUZZ_REPORT_DIR", root.join(".run/fuzz-test"))
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run scripts/fuzz.sh: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{text}");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{kind}: scripts/fuzz.sh failed ({})\n{text}",
            output.status
        ))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_on_either_service() {
    let system = System::start().await;
    let (students, courses) = tokio::join!(
        fuzz(&system.students.base, "students"),
        fuzz(&system.courses.base, "courses")
    );
    system.stop().await;
    let failures: Vec<String> = [students, courses]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

//! `bench-propagation`: how long a link change made on students takes to show on courses,
//! measured while another load runs. One student and `samples` courses are created; then, one
//! course after the other, the student is replaced with `course_ids: [course]` (t0: its 2xx
//! answer arrived) and the course is read again and again, a fresh request about every
//! millisecond, until its `student_ids` holds the student (t1: that answer arrived). A sample is
//! t1 − t0; one that takes longer than the timeout (or whose PUT fails) is lost. Everything
//! created is deleted at the end, also after SIGINT or SIGTERM.

mod api;

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

pub use api::{Api, StudentFields};

use crate::{BoxError, cli, error::chain, latency::Latencies};

/// The pace of the reads that wait for the link.
const POLL_EVERY: Duration = Duration::from_millis(1);

/// The deadline of each HTTP call (setup, PUT, clean-up; a read that waits for the link is
/// also bounded by what is left of its sample's timeout).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One probe run: the command line of `bench-propagation`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "bench-propagation")]
pub struct Config {
    /// The students service's HTTP base URL.
    #[arg(long)]
    pub students: String,
    /// The courses service's HTTP base URL.
    #[arg(long)]
    pub courses: String,
    #[arg(long, default_value = "200", value_parser = cli::positive)]
    pub samples: usize,
    /// How long a sample may take before it counts as lost.
    #[arg(long = "timeout-ms", default_value = "5000", value_parser = cli::millis)]
    pub timeout: Duration,
}

/// The JSON line of `bench-propagation`.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// Samples attempted (`--samples`).
    pub samples: usize,
    /// Of those, the ones without a measurement: over the timeout, or the PUT failed.
    pub lost: usize,
    /// Percentiles of the measured samples.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// What the probe created, so it can be removed whatever happens.
#[derive(Debug, Default)]
pub struct Fixture {
    pub student: Option<(String, StudentFields)>,
    pub courses: Vec<String>,
}

impl Fixture {
    /// Creates the student and the courses, recording each as soon as it exists.
    pub async fn create(&mut self, api: &Api, samples: usize) -> Result<(), BoxError> {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let tag = &tag[..8];
        let fields = StudentFields {
            name: format!("bench-{tag}"),
            first_name: "Propagation".into(),
            last_name: "Probe".into(),
        };
        let id = api.create_student(&fields).await?;
        self.student = Some((id, fields));
        for i in 0..samples {
            let course = api.create_course(&format!("bench-{tag}-{i}")).await?;
            self.courses.push(course);
        }
        Ok(())
    }

    /// Deletes the student (which unlinks it), then the courses; failures are reported on
    /// stderr, not fatal.
    pub async fn remove(&mut self, api: &Api) {
        if let Some((id, _)) = self.student.take()
            && let Err(e) = api.delete_student(&id).await
        {
            eprintln!(
                "bench-propagation: could not delete student {id}: {}",
                chain(&*e)
            );
        }
        for course in self.courses.drain(..) {
            if let Err(e) = api.delete_course(&course).await {
                eprintln!(
                    "bench-propagation: could not delete course {course}: {}",
                    chain(&*e)
                );
            }
        }
    }
}

/// Takes one sample per course of `fixture`.
pub async fn measure(api: &Api, fixture: &Fixture, timeout: Duration) -> Result<Outcome, BoxError> {
    let (student, fields) = fixture.student.as_ref().ok_or("no student was created")?;
    let mut latencies = Latencies::new();
    let mut lost = 0;
    for (i, course) in fixture.courses.iter().enumerate() {
        match sample(api, student, fields, course, timeout).await {
            Ok(Some(latency)) => latencies.record(latency),
            Ok(None) => {
                eprintln!("bench-propagation: sample {i}: not seen within {timeout:?}");
                lost += 1;
            }
            Err(e) => {
                eprintln!("bench-propagation: sample {i} lost: {}", chain(&*e));
                lost += 1;
            }
        }
        if (i + 1) % 50 == 0 {
            eprintln!(
                "bench-propagation: {}/{} samples",
                i + 1,
                fixture.courses.len()
            );
        }
    }
    let percentiles = latencies.percentiles();
    Ok(Outcome {
        samples: fixture.courses.len(),
        lost,
        p50_ms: percentiles.p50_ms,
        p99_ms: percentiles.p99_ms,
        max_ms: percentiles.max_ms,
    })
}

/// Links the student to `course` alone and waits until the course lists it: the time from the
/// PUT's answer to the read that shows the link, or `None` after `timeout`.
async fn sample(
    api: &Api,
    student: &str,
    fields: &StudentFields,
    course: &str,
    timeout: Duration,
) -> Result<Option<Duration>, BoxError> {
    api.replace_student(student, fields, &[course]).await?;
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    loop {
        let started = Instant::now();
        if started >= deadline {
            return Ok(None);
        }
        match tokio::time::timeout_at(deadline, api.course_lists(course, student)).await {
            Ok(Ok(true)) => return Ok(Some(t0.elapsed())),
            // Not there yet, or a failed read under load: ask again.
            Ok(Ok(false) | Err(_)) => {}
            Err(_) => return Ok(None),
        }
        tokio::time::sleep_until(started + POLL_EVERY).await;
    }
}

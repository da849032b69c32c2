//! Convergence (docs/behaviour.md §5.1): a seeded random mix of concurrent creates, updates and deletes
//! on both services; once it stops, `s ∈ c.student_ids ⇔ c ∈ s.course_ids` for every pair,
//! read through HTTP with the caches. `NIS_SEED` replays a run.

use std::sync::{Arc, Mutex};

use e2e::System;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng, seq::IndexedRandom as _};

const WORKERS: u64 = 4;
const OPERATIONS_PER_WORKER: usize = 40;

#[derive(Default)]
struct Ids {
    students: Vec<(String, u32)>,
    courses: Vec<(String, u32)>,
}

fn pick(rng: &mut StdRng, from: &[(String, u32)], at_most: usize) -> Vec<String> {
    let n = rng.random_range(0..=at_most.min(from.len()));
    from.choose_multiple(rng, n)
        .map(|(id, _)| id.clone())
        .collect()
}

#[tokio::test]
async fn concurrent_random_writes_on_both_sides_converge() {
    let seed: u64 = std::env::var("NIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261123);
    eprintln!("NIS_SEED={seed}");
    let system = Arc::new(System::start().await);
    let ids = Arc::new(Mutex::new(Ids::default()));
    for n in 0..10 {
        let id = system.student(n, &[]).await;
        ids.lock().expect("lock").students.push((id, n));
    }
    for n in 0..8 {
        let id = system.course(n, &[]).await;
        ids.lock().expect("lock").courses.push((id, n));
    }

    let workers = (0..WORKERS).map(|worker| {
        let system = system.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(worker));
            let mut next = 1000 * (worker as u32 + 1);
            for _ in 0..OPERATIONS_PER_WORKER {
                let roll = rng.random_range(0..100);
                let (students, courses) = {
                    let ids = ids.lock().expect("lock");
                    (ids.students.clone(), ids.courses.clone())
                };
                match roll {
                    0..40 if !students.is_empty() => {
                        let (id, n) = students.choose(&mut rng).expect("a student").clone();
                        let chosen = pick(&mut rng, &courses, 6);
                        system.set_courses(&id, n, &chosen).await;
                    }
                    40..80 if !courses.is_empty() => {
                        let (id, n) = courses.choose(&mut rng).expect("a course").clone();
                        let chosen = pick(&mut rng, &students, 8);
                        system.set_students(&id, n, &chosen).await;
                    }
                    80..86 if students.len() > 3 => {
                        let (id, _) = students.choose(&mut rng).expect("a student").clone();
                        system.students.delete(&format!("/api/students/{id}")).await;
                        ids.lock().expect("lock").students.retain(|(s, _)| *s != id);
                    }
                    86..92 if courses.len() > 3 => {
                        let (id, _) = courses.choose(&mut rng).expect("a course").clone();
                        system.courses.delete(&format!("/api/courses/{id}")).await;
                        ids.lock().expect("lock").courses.retain(|(c, _)| *c != id);
                    }
                    92..96 => {
                        next += 1;
                        let chosen = pick(&mut rng, &courses, 4);
                        let id = system.student(next, &chosen).await;
                        ids.lock().expect("lock").students.push((id, next));
                    }
                    _ => {
                        next += 1;
                        let chosen = pick(&mut rng, &students, 4);
                        let id = system.course(next, &chosen).await;
                        ids.lock().expect("lock").courses.push((id, next));
                    }
                }
            }
        })
    });
    for worker in workers.collect::<Vec<_>>() {
        worker.await.expect("worker");
    }

    system
        .eventually("the relation converges", || system.converged())
        .await;
    let (courses, students) = system.relation().await;
    let links: usize = courses.iter().map(|(_, s)| s.len()).sum();
    eprintln!(
        "converged: {} courses, {} students, {links} links",
        courses.len(),
        students.len()
    );
    match Arc::try_unwrap(system) {
        Ok(system) => system.stop().await,
        Err(_) => panic!("system still shared"),
    }
}

//! The relation kept in sync through NATS JetStream (docs/behaviour.md §5), end to end: both services,
//! real NATS, PostgreSQL, Redis and the MongoDB(-compatible) server. Every wait is a condition
//! with a deadline, read through HTTP with the caches.

use std::collections::BTreeSet;

use e2e::{System, set};
use testkit::body;

#[tokio::test]
async fn a_link_made_on_either_side_appears_on_the_other_and_cross_queries_agree() {
    let system = System::start().await;
    let s1 = system.student(1, &[]).await;
    let s2 = system.student(2, &[]).await;

    // Course side adds s1.
    let c = system.course(1, std::slice::from_ref(&s1)).await;
    system
        .eventually("s1 lists c", || async {
            system.courses_of(&s1).await == Some(set(&[&c]))
        })
        .await;
    let students_of_c = body(
        system
            .courses
            .get(&format!("/api/courses/{c}/students"))
            .await,
    )
    .await;
    let listed: Vec<_> = students_of_c["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(e2e::id)
        .collect();
    assert_eq!(listed, vec![s1.clone()]);
    assert_eq!(students_of_c["data"][0]["name"], "student1");
    let courses_of_s1 = body(
        system
            .students
            .get(&format!("/api/students/{s1}/courses"))
            .await,
    )
    .await;
    assert_eq!(courses_of_s1["data"][0]["id"], c.as_str());

    // Student side adds c to s2.
    assert_eq!(
        system.set_courses(&s2, 2, std::slice::from_ref(&c)).await,
        200
    );
    system
        .eventually("c lists s1 and s2", || async {
            system.students_of(&c).await == Some(set(&[&s1, &s2]))
        })
        .await;

    // Replace on the course side: s1 out.
    assert_eq!(
        system.set_students(&c, 1, std::slice::from_ref(&s2)).await,
        200
    );
    system
        .eventually("s1 no longer lists c", || async {
            system.courses_of(&s1).await == Some(BTreeSet::new())
        })
        .await;
    assert_eq!(system.courses_of(&s2).await, Some(set(&[&c])));

    // Remove on the student side.
    assert_eq!(system.set_courses(&s2, 2, &[]).await, 200);
    system
        .eventually("c lists no one", || async {
            system.students_of(&c).await == Some(BTreeSet::new())
        })
        .await;

    // Delete on either side removes the id from the other.
    assert_eq!(
        system.set_courses(&s1, 1, std::slice::from_ref(&c)).await,
        200
    );
    system
        .eventually("c lists s1 again", || async {
            system.students_of(&c).await == Some(set(&[&s1]))
        })
        .await;
    assert_eq!(
        system
            .students
            .delete(&format!("/api/students/{s1}"))
            .await
            .status(),
        204
    );
    system
        .eventually("deleting s1 removes it from c", || async {
            system.students_of(&c).await == Some(BTreeSet::new())
        })
        .await;
    let c2 = system.course(2, std::slice::from_ref(&s2)).await;
    system
        .eventually("s2 lists c2", || async {
            system.courses_of(&s2).await == Some(set(&[&c2]))
        })
        .await;
    assert_eq!(
        system
            .courses
            .delete(&format!("/api/courses/{c2}"))
            .await
            .status(),
        204
    );
    system
        .eventually("deleting c2 removes it from s2", || async {
            system.courses_of(&s2).await == Some(BTreeSet::new())
        })
        .await;
    assert!(system.converged().await);
    system.stop().await;
}

#[tokio::test]
async fn cross_queries_404_for_unknown_entities_and_503_when_the_other_service_is_down() {
    let system = System::start().await;
    let unknown_course = "0123456789abcdef01234567";
    let response = system
        .courses
        .get(&format!("/api/courses/{unknown_course}/students"))
        .await;
    assert_eq!(response.status(), 404);
    let response = system
        .students
        .get(&format!("/api/students/{}/courses", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(response.status(), 404);
    let s = system.student(1, &[]).await;
    let c = system.course(1, &[]).await;

    // Stop students: courses answers its cross query with 503, quickly.
    let System {
        courses, students, ..
    } = system;
    students.stop().await;
    let started = std::time::Instant::now();
    let response = courses.get(&format!("/api/courses/{c}/students")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(body(response).await["error"]["code"], "unavailable");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let _ = s;
    courses.stop().await;
}

#[tokio::test]
async fn links_to_unknown_entities_are_undone() {
    let system = System::start().await;
    let ghost_student = uuid::Uuid::now_v7().to_string();
    let real = system.student(1, &[]).await;
    let c = system
        .course(1, &[ghost_student.clone(), real.clone()])
        .await;
    system
        .eventually("the unknown student is removed from the course", || async {
            system.students_of(&c).await == Some(set(&[&real]))
        })
        .await;
    assert_eq!(system.courses_of(&real).await, Some(set(&[&c])));

    let ghost_course = "0123456789abcdef01234567".to_owned();
    let s = system.student(2, &[ghost_course.clone(), c.clone()]).await;
    system
        .eventually("the unknown course is removed from the student", || async {
            system.courses_of(&s).await == Some(set(&[&c]))
        })
        .await;
    system
        .eventually("c lists both", || async {
            system.students_of(&c).await == Some(set(&[&real, &s]))
        })
        .await;
    let metrics = system.students.metrics().await;
    assert!(
        testkit::metric_value(
            &metrics,
            "nis_events_consumed_total",
            &[("service", "students"), ("outcome", "compensated")]
        ) >= 1.0,
        "{metrics}"
    );
    system.stop().await;
}

#[tokio::test]
async fn links_past_the_other_sides_limit_are_undone() {
    let system = System::start().await;
    // A student with 15 courses cannot take a 16th added from the course side.
    let mut fifteen = Vec::new();
    for n in 0..15 {
        fifteen.push(system.course(n, &[]).await);
    }
    let busy = system.student(1, &fifteen).await;
    system
        .eventually("all 15 courses list the student", || async {
            for c in &fifteen {
                if system.students_of(c).await != Some(set(&[&busy])) {
                    return false;
                }
            }
            true
        })
        .await;
    let sixteenth = system.course(99, std::slice::from_ref(&busy)).await;
    system
        .eventually("the 16th course loses the student again", || async {
            system.students_of(&sixteenth).await == Some(BTreeSet::new())
        })
        .await;
    assert_eq!(system.courses_of(&busy).await.map(|c| c.len()), Some(15));

    // A course with 60 students cannot take a 61st added from the student side.
    let mut sixty = Vec::new();
    for n in 100..160 {
        sixty.push(system.student(n, &[]).await);
    }
    let full = system.course(200, &sixty).await;
    system
        .eventually("the 60 students list the full course", || async {
            for s in &sixty {
                if system.courses_of(s).await != Some(set(&[&full])) {
                    return false;
                }
            }
            true
        })
        .await;
    let late = system.student(300, std::slice::from_ref(&full)).await;
    system
        .eventually("the 61st student loses the course again", || async {
            system.courses_of(&late).await == Some(BTreeSet::new())
        })
        .await;
    assert_eq!(system.students_of(&full).await.map(|s| s.len()), Some(60));
    assert!(system.converged().await);
    system.stop().await;
}

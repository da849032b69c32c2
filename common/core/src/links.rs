//! The rules that keep the course↔student relation convergent (docs/behaviour.md §5), as pure functions
//! the stores call inside their atomic writes.
//!
//! Each side keeps, for every pair it has ever changed or applied, a logical *clock*: the clock
//! of the newest change of that pair it knows. A local write stamps each changed pair with a
//! clock greater than any it has seen for the pair (and greater than the wall clock); a received
//! change is applied only if its clock is greater than the stored one. Courses' clocks are odd
//! and students' even, so two changes never tie. Whatever order messages arrive in, and however
//! often, both sides end with the state of the newest change of each pair:
//! duplicates and stale messages change nothing, and concurrent opposite edits agree.
//!
//! A received link that cannot be kept — its entity does not exist, or the list is full — is
//! *compensated*: answered with an unlink stamped newer still, which the other side applies.

use std::collections::BTreeMap;

/// The clock of each pair an entity has, or had, a link with, by the other entity's id.
pub type Clocks = BTreeMap<String, i64>;

/// Which side makes a clock: its parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Courses stamp odd clocks.
    Courses,
    /// Students stamp even clocks.
    Students,
}

impl Side {
    fn parity(self) -> i64 {
        match self {
            Self::Courses => 1,
            Self::Students => 0,
        }
    }

    /// A clock of this side greater than `after` and than the wall clock `now_micros`.
    pub fn next_clock(self, after: Option<i64>, now_micros: i64) -> i64 {
        let floor = after
            .map_or(i64::MIN, |c| c.saturating_add(1))
            .max(now_micros.saturating_mul(2));
        if floor.rem_euclid(2) == self.parity() {
            floor
        } else {
            floor + 1
        }
    }
}

/// Microseconds since the Unix epoch, the wall-clock part of new clocks.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// One pair change to send to the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The other entity's id.
    pub other: String,
    /// Whether the pair is now linked.
    pub linked: bool,
    /// The pair's new clock.
    pub clock: i64,
}

/// The changes a local write of an entity's list makes, from `old` to `new` (a delete is a
/// write to the empty list). Stamps `clocks` and returns what to publish, in list order.
pub fn plan_write(
    side: Side,
    old: &[String],
    new: &[String],
    clocks: &mut Clocks,
    now: i64,
) -> Vec<Outgoing> {
    let added = new
        .iter()
        .filter(|id| !old.contains(id))
        .map(|id| (id, true));
    let removed = old
        .iter()
        .filter(|id| !new.contains(id))
        .map(|id| (id, false));
    added
        .chain(removed)
        .map(|(other, linked)| plan_one(side, other, linked, clocks, now))
        .collect()
}

/// The change a one-link write makes: the pair `other` is now `linked`, stamped with a new
/// clock *whether or not* this side already held it so. The other side may have a change of
/// the pair on its way that this side has not seen yet; a statement made later must win over
/// it on both sides, which only a newer clock does.
pub fn plan_one(side: Side, other: &str, linked: bool, clocks: &mut Clocks, now: i64) -> Outgoing {
    let clock = side.next_clock(clocks.get(other).copied(), now);
    clocks.insert(other.to_owned(), clock);
    Outgoing {
        other: other.to_owned(),
        linked,
        clock,
    }
}

/// What applying a received change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Applied (or already true, or superseded by a newer change of the pair).
    Applied,
    /// Seen before: nothing changed.
    Duplicate,
    /// Could not be kept and was answered with an unlink.
    Compensated,
}

impl Outcome {
    /// The `outcome` label of `nis_events_consumed_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Compensated => "compensated",
        }
    }
}

/// The decision for one received change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What happened.
    pub outcome: Outcome,
    /// The entity's new list, if it changed.
    pub new_links: Option<Vec<String>>,
    /// The unlink to send back, when compensating.
    pub compensation: Option<Outgoing>,
}

/// A received change of pair (this entity, `other`): `linked` at `clock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The other entity's id.
    pub other: String,
    /// Whether the other side now links the pair.
    pub linked: bool,
    /// The change's clock.
    pub clock: i64,
}

/// Decides how to apply `change` to an entity whose list is `links` (`None`: no such entity),
/// with at most `limit` links. Updates `clocks`.
pub fn plan_apply(
    side: Side,
    links: Option<&[String]>,
    clocks: &mut Clocks,
    change: &Received,
    limit: usize,
    now: i64,
) -> Plan {
    let compensate = |clocks: &mut Clocks, after: i64| {
        let clock = side.next_clock(Some(after), now);
        clocks.insert(change.other.clone(), clock);
        Plan {
            outcome: Outcome::Compensated,
            new_links: None,
            compensation: Some(Outgoing {
                other: change.other.clone(),
                linked: false,
                clock,
            }),
        }
    };
    let unchanged = |outcome| Plan {
        outcome,
        new_links: None,
        compensation: None,
    };
    let Some(links) = links else {
        // No such entity: a link to it must be undone on the other side; an unlink is moot.
        return if change.linked {
            compensate(clocks, change.clock)
        } else {
            unchanged(Outcome::Applied)
        };
    };
    match clocks.get(&change.other).copied() {
        Some(known) if known == change.clock => return unchanged(Outcome::Duplicate),
        Some(known) if known > change.clock => return unchanged(Outcome::Applied),
        _ => {}
    }
    let present = links.contains(&change.other);
    if change.linked && !present && links.len() >= limit {
        return compensate(clocks, change.clock);
    }
    clocks.insert(change.other.clone(), change.clock);
    let new_links = match (change.linked, present) {
        (true, false) => Some(
            links
                .iter()
                .cloned()
                .chain([change.other.clone()])
                .collect(),
        ),
        (false, true) => Some(
            links
                .iter()
                .filter(|id| **id != change.other)
                .cloned()
                .collect(),
        ),
        _ => None,
    };
    Plan {
        outcome: Outcome::Applied,
        new_links,
        compensation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn received(other: &str, linked: bool, clock: i64) -> Received {
        Received {
            other: other.into(),
            linked,
            clock,
        }
    }

    #[test]
    fn clocks_have_the_side_parity_and_grow() {
        assert_eq!(Side::Courses.next_clock(None, 10).rem_euclid(2), 1);
        assert_eq!(Side::Students.next_clock(None, 10).rem_euclid(2), 0);
        assert!(Side::Students.next_clock(Some(1_000), 10) > 1_000);
        assert!(Side::Courses.next_clock(Some(7), 100) >= 200);
    }

    #[test]
    fn a_write_stamps_only_changed_pairs() {
        let mut clocks = Clocks::new();
        let out = plan_write(
            Side::Courses,
            &ids(&["a", "b"]),
            &ids(&["b", "c"]),
            &mut clocks,
            5,
        );
        let summary: Vec<_> = out.iter().map(|o| (o.other.as_str(), o.linked)).collect();
        assert_eq!(summary, [("c", true), ("a", false)]);
        assert_eq!(clocks.len(), 2);
        assert!(!clocks.contains_key("b"));
    }

    #[test]
    fn duplicates_and_stale_changes_change_nothing() {
        let mut clocks = Clocks::new();
        let links = ids(&[]);
        let first = plan_apply(
            Side::Students,
            Some(&links),
            &mut clocks,
            &received("c", true, 11),
            15,
            0,
        );
        assert_eq!(first.outcome, Outcome::Applied);
        assert_eq!(first.new_links, Some(ids(&["c"])));
        let again = plan_apply(
            Side::Students,
            Some(&ids(&["c"])),
            &mut clocks,
            &received("c", true, 11),
            15,
            0,
        );
        assert_eq!(again.outcome, Outcome::Duplicate);
        let stale = plan_apply(
            Side::Students,
            Some(&ids(&["c"])),
            &mut clocks,
            &received("c", false, 9),
            15,
            0,
        );
        assert_eq!((stale.outcome, stale.new_links), (Outcome::Applied, None));
    }

    #[test]
    fn concurrent_opposite_edits_converge_on_the_newest() {
        // Students links (s, c) at clock 20; courses unlinks the same pair at clock 31.
        let mut student_clocks = Clocks::new();
        let student_out = plan_write(Side::Students, &[], &ids(&["c"]), &mut student_clocks, 10);
        let mut course_clocks = Clocks::from([("s".to_owned(), 29)]);
        let course_out = plan_write(Side::Courses, &ids(&["s"]), &[], &mut course_clocks, 15);
        assert!(course_out[0].clock > student_out[0].clock);
        // Each side receives the other's change.
        let at_course = plan_apply(
            Side::Courses,
            Some(&[]),
            &mut course_clocks,
            &received("s", true, student_out[0].clock),
            60,
            0,
        );
        let at_student = plan_apply(
            Side::Students,
            Some(&ids(&["c"])),
            &mut student_clocks,
            &received("c", false, course_out[0].clock),
            15,
            0,
        );
        assert_eq!(at_course.new_links, None, "stale link ignored");
        assert_eq!(at_student.new_links, Some(vec![]), "newer unlink applied");
    }

    #[test]
    fn unknown_entities_and_full_lists_are_compensated() {
        let mut clocks = Clocks::new();
        let missing = plan_apply(
            Side::Courses,
            None,
            &mut clocks,
            &received("s", true, 40),
            60,
            0,
        );
        assert_eq!(missing.outcome, Outcome::Compensated);
        let back = missing.compensation.expect("unlink");
        assert!(!back.linked && back.clock > 40 && back.clock % 2 == 1);

        let full: Vec<String> = (0..15).map(|i| format!("c{i}")).collect();
        let mut clocks = Clocks::new();
        let over = plan_apply(
            Side::Students,
            Some(&full),
            &mut clocks,
            &received("c99", true, 41),
            15,
            0,
        );
        assert_eq!(over.outcome, Outcome::Compensated);
        assert_eq!(over.new_links, None);
        assert!(clocks["c99"] > 41);

        let moot = plan_apply(
            Side::Courses,
            None,
            &mut Clocks::new(),
            &received("s", false, 40),
            60,
            0,
        );
        assert_eq!((moot.outcome, moot.compensation), (Outcome::Applied, None));
    }
}

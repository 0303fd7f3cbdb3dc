//! Which records of each partition a run reads: from the offset the table's last commit
//! recorded (or the starting position) to the broker's end, capped per run.
//!
//! The offsets live in the bronze table's own commits (one Delta `txn` action per partition,
//! [`watermark_id`]), so the rows and the position they were read up to land together or not at
//! all: a crash anywhere before the commit makes the next run read the same records again, and
//! no consumer-group offset is trusted. A quarantine committed by an attempt whose table commit
//! never happened records the same offsets; the next run then reads exactly that attempt's
//! ranges again and keeps only the table's rows ([`Planned::replay`]).

use serde::{Deserialize, Serialize};

use crate::spec::StartingOffsets;

/// The records `[start, end)` of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetRange {
    /// The partition.
    pub partition: i32,
    /// First offset read.
    pub start: i64,
    /// One past the last offset read.
    pub end: i64,
}

impl OffsetRange {
    /// Records in the range.
    pub fn len(&self) -> i64 {
        self.end - self.start
    }

    /// Whether the range holds no record.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// The `txn` app id under which a table records the next offset of `topic`'s `partition`.
pub fn watermark_id(topic: &str, partition: i32) -> String {
    format!("kafka/{topic}/{partition}")
}

/// What the broker and the table say about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: i32,
    /// The oldest offset the broker holds.
    pub earliest: i64,
    /// The offset the next record will get (the high watermark).
    pub latest: i64,
    /// The next offset the table would read, from its last commit.
    pub committed: Option<i64>,
    /// The offset the quarantine's last commit recorded.
    pub quarantined: Option<i64>,
}

/// The ranges a run reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// One per partition, in partition order (empty ranges included: their offsets are
    /// recorded all the same).
    pub ranges: Vec<OffsetRange>,
    /// An earlier attempt committed its quarantine for these ranges but not the table: the
    /// quarantine rows are already there.
    pub replay: bool,
}

/// Why a partition cannot be read on from where the table stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// Records between the table's offset and the broker's earliest were deleted.
    Lost {
        /// The partition.
        partition: i32,
        /// The table's next offset.
        committed: i64,
        /// The broker's earliest.
        earliest: i64,
    },
    /// The table is ahead of the broker's end (the topic was recreated).
    Ahead {
        /// The partition.
        partition: i32,
        /// The table's next offset.
        committed: i64,
        /// The broker's end.
        latest: i64,
    },
}

/// Plans the ranges: each partition from where the table stopped to the broker's end, at most
/// `cap` records in all, shared so that small backlogs are read whole.
pub fn plan_ranges(
    partitions: &[PartitionOffsets],
    starting: StartingOffsets,
    cap: Option<u64>,
    fail_on_data_loss: bool,
) -> Result<Planned, Gap> {
    let mut starts = Vec::with_capacity(partitions.len());
    for p in partitions {
        starts.push(start_of(p, starting, fail_on_data_loss)?);
    }
    let replay = partitions
        .iter()
        .zip(&starts)
        .any(|(p, start)| p.quarantined.is_some_and(|q| q > *start));
    let ends: Vec<i64> = if replay {
        partitions
            .iter()
            .zip(&starts)
            .map(|(p, start)| p.quarantined.unwrap_or(*start).clamp(*start, p.latest))
            .collect()
    } else {
        let backlogs: Vec<i64> = partitions
            .iter()
            .zip(&starts)
            .map(|(p, s)| p.latest - s)
            .collect();
        let taken = share(&backlogs, cap);
        starts.iter().zip(taken).map(|(s, t)| s + t).collect()
    };
    let ranges = partitions
        .iter()
        .zip(starts.iter().zip(ends))
        .map(|(p, (start, end))| OffsetRange {
            partition: p.partition,
            start: *start,
            end,
        })
        .collect();
    Ok(Planned { ranges, replay })
}

fn start_of(p: &PartitionOffsets, starting: StartingOffsets, fail_on_data_loss: bool) -> Result<i64, Gap> {
    let Some(committed) = p.committed else {
        return Ok(match starting {
            StartingOffsets::Earliest => p.earliest,
            StartingOffsets::Latest => p.latest,
        });
    };
    if committed > p.latest {
        return Err(Gap::Ahead {
            partition: p.partition,
            committed,
            latest: p.latest,
        });
    }
    if committed < p.earliest {
        if fail_on_data_loss {
            return Err(Gap::Lost {
                partition: p.partition,
                committed,
                earliest: p.earliest,
            });
        }
        tracing::warn!(
            partition = p.partition,
            committed,
            earliest = p.earliest,
            "records deleted before they were read; reading on from the earliest"
        );
        return Ok(p.earliest);
    }
    Ok(committed)
}

/// How many of each backlog a run takes: all of them without a cap; with one, the smallest
/// backlogs whole and the rest of the cap split evenly over the others.
fn share(backlogs: &[i64], cap: Option<u64>) -> Vec<i64> {
    let Some(cap) = cap else {
        return backlogs.to_vec();
    };
    let mut order: Vec<usize> = (0..backlogs.len()).collect();
    order.sort_by_key(|&i| (backlogs[i], i));
    let mut left = i64::try_from(cap).unwrap_or(i64::MAX);
    let mut taken = vec![0; backlogs.len()];
    for (n, &i) in order.iter().enumerate() {
        let fair = left / (order.len() - n) as i64;
        taken[i] = backlogs[i].min(fair);
        left -= taken[i];
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(partition: i32, earliest: i64, latest: i64, committed: Option<i64>) -> PartitionOffsets {
        PartitionOffsets {
            partition,
            earliest,
            latest,
            committed,
            quarantined: None,
        }
    }

    fn ends(planned: &Planned) -> Vec<(i64, i64)> {
        planned.ranges.iter().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn reads_from_the_committed_offset_or_the_starting_position_to_the_end() {
        let parts = [part(0, 0, 10, Some(4)), part(1, 2, 7, None)];
        let early = plan_ranges(&parts, StartingOffsets::Earliest, None, true).unwrap();
        assert_eq!(ends(&early), vec![(4, 10), (2, 7)]);
        assert!(!early.replay);
        let late = plan_ranges(&parts, StartingOffsets::Latest, None, true).unwrap();
        assert_eq!(ends(&late), vec![(4, 10), (7, 7)]);
    }

    #[test]
    fn a_cap_reads_small_backlogs_whole_and_splits_the_rest() {
        let parts = [part(0, 0, 100, None), part(1, 0, 3, None), part(2, 0, 100, None)];
        let planned = plan_ranges(&parts, StartingOffsets::Earliest, Some(23), true).unwrap();
        assert_eq!(ends(&planned), vec![(0, 10), (0, 3), (0, 10)]);
        let total: i64 = planned.ranges.iter().map(OffsetRange::len).sum();
        assert_eq!(total, 23);
    }

    #[test]
    fn deleted_records_fail_unless_told_to_read_on() {
        let parts = [part(0, 5, 10, Some(3))];
        let lost = plan_ranges(&parts, StartingOffsets::Earliest, None, true).unwrap_err();
        assert_eq!(
            lost,
            Gap::Lost {
                partition: 0,
                committed: 3,
                earliest: 5
            }
        );
        let on = plan_ranges(&parts, StartingOffsets::Earliest, None, false).unwrap();
        assert_eq!(ends(&on), vec![(5, 10)]);
        let ahead = plan_ranges(&[part(0, 0, 2, Some(9))], StartingOffsets::Earliest, None, true);
        assert!(matches!(ahead, Err(Gap::Ahead { .. })));
    }

    #[test]
    fn a_quarantine_ahead_of_the_table_replays_that_attempt_exactly() {
        let mut a = part(0, 0, 50, Some(10));
        a.quarantined = Some(20);
        let mut b = part(1, 0, 50, Some(5));
        b.quarantined = Some(5);
        let planned = plan_ranges(&[a, b], StartingOffsets::Earliest, Some(1), true).unwrap();
        assert!(planned.replay);
        assert_eq!(ends(&planned), vec![(10, 20), (5, 5)]);
        // A quarantine behind the table (later runs quarantined nothing) is no replay.
        a.quarantined = Some(8);
        let planned = plan_ranges(&[a], StartingOffsets::Earliest, None, true).unwrap();
        assert!(!planned.replay);
        assert_eq!(ends(&planned), vec![(10, 50)]);
    }
}

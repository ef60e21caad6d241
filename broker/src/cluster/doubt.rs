//! [`ProposalDoubt`]: whether a leader has proposals whose wait ended without an answer. Such
//! a proposal may still commit, so until this node applied it, no state may be read for a new
//! write (a duplicate key, a producer's last batch, a version link would be checked without
//! it). `ClusterWriter::settle_doubt` waits for the entries in the log when it looks, then
//! clears the doubt.
//!
//! Why a generation and not just the term: a proposal that times out while another caller is
//! settling an earlier doubt of the same term may sit after the log index that caller waits
//! for. Clearing the doubt then would let the next write read state without that proposal, and
//! a retry of it would be written a second time. So a settle clears only the doubts recorded
//! before it looked. (Found by reading, after a 1,000-round fault schedule stored a producer's
//! batch twice; that this race caused that run's duplicate is not shown.)

use parking_lot::Mutex;

/// The doubts a writer has, behind one lock so a settle clears exactly what it saw.
#[derive(Debug, Default)]
pub(crate) struct ProposalDoubt {
    state: Mutex<DoubtState>,
}

#[derive(Debug, Default)]
struct DoubtState {
    /// The latest term of a proposal in doubt (0: none).
    term: u64,
    /// Counts the doubts recorded, so a settle knows whether another came since it looked.
    generation: u64,
}

/// What a settle saw: the term to settle and which doubts it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeenDoubt {
    /// The latest term of a proposal in doubt.
    pub term: u64,
    generation: u64,
}

impl ProposalDoubt {
    /// A proposal made in `term` got no answer in time.
    pub(crate) fn record(&self, term: u64) {
        let mut state = self.state.lock();
        state.term = state.term.max(term);
        state.generation += 1;
    }

    /// The doubt to settle, if any. Take it after the log index the settle will wait for:
    /// every doubt recorded by then is of a proposal already in the log.
    pub(crate) fn seen(&self) -> Option<SeenDoubt> {
        let state = self.state.lock();
        (state.term != 0).then_some(SeenDoubt {
            term: state.term,
            generation: state.generation,
        })
    }

    /// `seen` is settled: clear the doubt unless another was recorded since.
    pub(crate) fn settled(&self, seen: SeenDoubt) {
        let mut state = self.state.lock();
        if state.generation == seen.generation {
            state.term = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settle_clears_only_the_doubts_it_saw() {
        let doubt = ProposalDoubt::default();
        assert_eq!(doubt.seen(), None);
        doubt.record(4);
        let first = doubt.seen().expect("in doubt");
        assert_eq!(first.term, 4);
        // Another proposal of the same term times out while the first settle waits.
        doubt.record(4);
        doubt.settled(first);
        let second = doubt.seen().expect("the later doubt stays");
        assert_eq!(second.term, 4);
        doubt.settled(second);
        assert_eq!(doubt.seen(), None);
    }

    #[test]
    fn the_latest_term_in_doubt_is_kept() {
        let doubt = ProposalDoubt::default();
        doubt.record(7);
        doubt.record(5);
        assert_eq!(doubt.seen().map(|seen| seen.term), Some(7));
    }
}

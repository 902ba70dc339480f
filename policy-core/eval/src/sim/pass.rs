//! The pages the simulated QEMU still has to send: its dirty bitmap,
//! walked in address order from where the last send stopped.
//!
//! QEMU keeps one bitmap of pages to send. A sync ORs into it what the
//! guest wrote since the sync before (its dirty log), so a page written
//! while still waiting in the bitmap is sent once, and a page written after
//! it was sent is sent again. Sending walks the bitmap from a cursor that
//! wraps at the end of guest RAM.

use super::guest::DirtySet;
use super::{PAGE_SIZE_BYTES, ZERO_PAGE_BYTES};

/// The bitmap of pages still to send, with the send cursor.
#[derive(Debug, Clone)]
pub struct SendQueue {
    bits: Vec<u64>,
    page_count: u64,
    len_pages: u64,
    cursor_page: u64,
}

impl SendQueue {
    /// Every page of a guest of `page_count` pages pending: the bulk pass.
    pub fn full(page_count: u64) -> Self {
        let mut bits = vec![u64::MAX; page_count.div_ceil(64) as usize];
        let tail = page_count % 64;
        if let (Some(last), true) = (bits.last_mut(), tail != 0) {
            *last = (1u64 << tail) - 1;
        }
        Self {
            bits,
            page_count,
            len_pages: page_count,
            cursor_page: 0,
        }
    }

    /// Pages still to send.
    pub fn len_pages(&self) -> u64 {
        self.len_pages
    }

    /// A sync: merge the pages written since the last sync. Returns how
    /// many of them were not pending already (QEMU's dirty-page count of
    /// the sync).
    pub fn merge(&mut self, written: &DirtySet) -> u64 {
        let mut newly_pending = 0;
        for page in written.pages() {
            let (word, bit) = ((page / 64) as usize, page % 64);
            if let Some(w) = self.bits.get_mut(word) {
                if *w & (1 << bit) == 0 {
                    *w |= 1 << bit;
                    newly_pending += 1;
                }
            }
        }
        self.len_pages += newly_pending;
        newly_pending
    }

    /// Bytes on the wire to send every pending page (a page never written
    /// is a zero page).
    pub fn wire_bytes(&self, nonzero: &DirtySet) -> u64 {
        let mut bytes = 0;
        for (word_index, &word) in self.bits.iter().enumerate() {
            let mut w = word;
            while w != 0 {
                let page = word_index as u64 * 64 + u64::from(w.trailing_zeros());
                bytes += page_wire_bytes(page, nonzero);
                w &= w - 1;
            }
        }
        bytes
    }

    /// Send up to `pages` pending pages from the cursor on, in address
    /// order, wrapping once at the end of RAM. Returns the bytes sent.
    pub fn send(&mut self, pages: u64, nonzero: &DirtySet) -> u64 {
        let mut left = pages.min(self.len_pages);
        let mut bytes = 0;
        let words = self.bits.len() as u64;
        let mut word_index = self.cursor_page / 64;
        let mut steps = 0;
        while left > 0 && steps <= words {
            let word = &mut self.bits[(word_index % words) as usize];
            // On the first word, only the pages at or after the cursor.
            let from_bit = if steps == 0 { self.cursor_page % 64 } else { 0 };
            let mut candidates = *word & (u64::MAX << from_bit);
            while candidates != 0 && left > 0 {
                let bit = candidates.trailing_zeros();
                let page = (word_index % words) * 64 + u64::from(bit);
                *word &= !(1u64 << bit);
                candidates &= candidates - 1;
                bytes += page_wire_bytes(page, nonzero);
                left -= 1;
                self.len_pages -= 1;
                self.cursor_page = (page + 1) % self.page_count.max(1);
            }
            if left > 0 {
                word_index += 1;
                steps += 1;
            }
        }
        bytes
    }
}

fn page_wire_bytes(page: u64, nonzero: &DirtySet) -> u64 {
    if nonzero.contains(page) {
        PAGE_SIZE_BYTES
    } else {
        ZERO_PAGE_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_holds_every_page_and_sends_zero_pages_cheaply() {
        let mut nonzero = DirtySet::new(100);
        nonzero.insert(3);
        let mut queue = SendQueue::full(100);
        assert_eq!(queue.len_pages(), 100);
        assert_eq!(
            queue.wire_bytes(&nonzero),
            PAGE_SIZE_BYTES + 99 * ZERO_PAGE_BYTES
        );
        assert_eq!(
            queue.send(10, &nonzero),
            PAGE_SIZE_BYTES + 9 * ZERO_PAGE_BYTES
        );
        assert_eq!(queue.len_pages(), 90);
        assert_eq!(queue.send(1000, &nonzero), 90 * ZERO_PAGE_BYTES);
        assert_eq!(queue.len_pages(), 0);
    }

    #[test]
    fn a_page_written_while_pending_is_sent_once_and_after_its_send_again() {
        let nonzero = DirtySet::new(200);
        let mut queue = SendQueue::full(200);
        queue.send(100, &nonzero); // pages 0..100 sent, cursor at 100
        let mut written = DirtySet::new(200);
        written.insert(5); // already sent: pending again
        written.insert(150); // still pending: no change
        assert_eq!(queue.merge(&written), 1);
        assert_eq!(queue.len_pages(), 101);
        // The walk goes on from the cursor: 100..200, then wraps to 5.
        queue.send(100, &nonzero);
        assert_eq!(queue.len_pages(), 1);
        queue.send(1, &nonzero);
        assert_eq!(queue.len_pages(), 0);
        assert_eq!(queue.send(1, &nonzero), 0);
    }

    #[test]
    fn the_walk_wraps_to_pages_behind_the_cursor() {
        let nonzero = DirtySet::new(130);
        let mut queue = SendQueue::full(130);
        queue.send(130, &nonzero);
        let mut written = DirtySet::new(130);
        for page in [1, 64, 129] {
            written.insert(page);
        }
        queue.merge(&written);
        // Cursor wrapped to 0 after page 129: sends 1 and 64 first.
        queue.send(2, &nonzero);
        assert_eq!(queue.len_pages(), 1);
        let mut again = DirtySet::new(130);
        again.insert(1);
        assert_eq!(queue.merge(&again), 1, "page 1 was sent: pending again");
        // From the cursor (65): 129, then wrapping, 1.
        queue.send(2, &nonzero);
        assert_eq!(queue.len_pages(), 0);
    }
}

//! The small lz4 blocks of compact messages, as both ends of a connection have seen them, so
//! that a glyph typed again costs a byte instead of its pixels.
//!
//! A block is small when it decompresses to at most [`MAX_SMALL_BLOCK`] bytes. Both ends keep,
//! for the small blocks of compact messages since the last canonical message:
//! - the [`RECENT_BLOCKS`] used most recently (their decompressed bytes, most recent first);
//! - the history: their decompressed bytes in order, of which the last [`WINDOW`] bytes are a
//!   dictionary.
//!
//! A small block goes as a one-byte reference to an equal recent block ([`BlockForm::Repeat`]),
//! else in the shorter of its lz4 form compressed against the dictionary
//! ([`BlockForm::History`]) and the plain lz4 block as it is ([`BlockForm::Plain`]; lz4_flex's
//! dictionary mode sometimes misses matches inside the block itself). Either way the block
//! becomes the most recent one and joins the history.

/// The most bytes a small block decompresses to.
pub(super) const MAX_SMALL_BLOCK: usize = 1024;
/// Bytes of history a block is compressed against.
pub(super) const WINDOW: usize = 4096;
/// How many recent blocks both ends keep: as many as one byte names (256 KiB at most). 32
/// made 38 bytes a typed character on the X11 typing workload, 256 make 36.
pub(super) const RECENT_BLOCKS: usize = 256;
const _: () = assert!(RECENT_BLOCKS <= 256, "a repeat names its block in one byte");

use super::recent::Recent;

/// How a small block travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BlockForm {
    /// The plain lz4 block, as in the canonical message.
    Plain,
    /// An lz4 block compressed against the history's dictionary.
    History,
    /// One byte: the index of an equal recent block.
    Repeat,
}

/// The shared history and a scratch block.
#[derive(Default)]
pub(super) struct BlockHistory {
    bytes: Vec<u8>,
    recent: Recent<RECENT_BLOCKS>,
    block: Vec<u8>,
}

/// Why a block did not turn from one form into the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BadBlock;

impl BlockHistory {
    /// Appends to `out` the shortest form of the plain lz4 `block`, which decompresses to
    /// exactly `size` (at most [`MAX_SMALL_BLOCK`]) bytes, and returns which form it is.
    pub(super) fn pack(
        &mut self,
        block: &[u8],
        size: usize,
        out: &mut Vec<u8>,
    ) -> Result<BlockForm, BadBlock> {
        self.block.resize(size, 0);
        match lz4_flex::block::decompress_into(block, &mut self.block) {
            Ok(n) if n == size => {}
            _ => return Err(BadBlock),
        }
        let form = match self.recent.find(&self.block) {
            Some(k) => {
                out.push(k as u8);
                self.recent.use_entry(k);
                BlockForm::Repeat
            }
            None => {
                let at = out.len();
                out.resize(at + lz4_flex::block::get_maximum_output_size(size), 0);
                let dictionary = &self.bytes[self.bytes.len().saturating_sub(WINDOW)..];
                let n = lz4_flex::block::compress_into_with_dict(
                    &self.block,
                    &mut out[at..],
                    dictionary,
                )
                .map_err(|_| BadBlock)?;
                let form = if n < block.len() {
                    out.truncate(at + n);
                    BlockForm::History
                } else {
                    out.truncate(at);
                    out.extend_from_slice(block);
                    BlockForm::Plain
                };
                self.recent.add(&self.block);
                form
            }
        };
        self.remember();
        Ok(form)
    }

    /// Appends to `out` the plain lz4 form of a small `block` that came in `form`, which must
    /// decompress to exactly `size` (at most [`MAX_SMALL_BLOCK`]) bytes.
    pub(super) fn unpack(
        &mut self,
        block: &[u8],
        size: usize,
        form: BlockForm,
        out: &mut Vec<u8>,
    ) -> Result<(), BadBlock> {
        let dictionary = &self.bytes[self.bytes.len().saturating_sub(WINDOW)..];
        match form {
            BlockForm::Repeat => {
                let [k] = block else {
                    return Err(BadBlock);
                };
                let recent = self.recent.get(usize::from(*k)).ok_or(BadBlock)?;
                if recent.len() != size {
                    return Err(BadBlock);
                }
                self.block.clear();
                self.block.extend_from_slice(recent);
                self.recent.use_entry(usize::from(*k));
            }
            BlockForm::History | BlockForm::Plain => {
                self.block.resize(size, 0);
                let decompressed = if form == BlockForm::History {
                    lz4_flex::block::decompress_into_with_dict(block, &mut self.block, dictionary)
                } else {
                    lz4_flex::block::decompress_into(block, &mut self.block)
                };
                match decompressed {
                    Ok(n) if n == size => {}
                    _ => return Err(BadBlock),
                }
            }
        }
        if form == BlockForm::Plain {
            out.extend_from_slice(block);
        } else {
            let at = out.len();
            out.resize(at + lz4_flex::block::get_maximum_output_size(size), 0);
            let n = lz4_flex::block::compress_into(&self.block, &mut out[at..])
                .map_err(|_| BadBlock)?;
            out.truncate(at + n);
        }
        if form != BlockForm::Repeat {
            self.recent.add(&self.block);
        }
        self.remember();
        Ok(())
    }

    /// Forgets every block (a canonical message went by).
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.recent.clear();
    }

    /// Adds the scratch block to the history.
    fn remember(&mut self) {
        self.bytes.extend_from_slice(&self.block);
        // Keep the window, dropping what is older only now and then.
        if self.bytes.len() > 4 * WINDOW {
            self.bytes.drain(..self.bytes.len() - WINDOW);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(bytes: &[u8]) -> Vec<u8> {
        lz4_flex::block::compress(bytes)
    }

    /// Packs `bytes` (as a plain lz4 block) and unpacks the result; the form and wire bytes.
    fn round_trip(
        sender: &mut BlockHistory,
        viewer: &mut BlockHistory,
        bytes: &[u8],
    ) -> (BlockForm, Vec<u8>) {
        let canonical = plain(bytes);
        let mut wire = Vec::new();
        let form = sender.pack(&canonical, bytes.len(), &mut wire).unwrap();
        let mut back = Vec::new();
        viewer.unpack(&wire, bytes.len(), form, &mut back).unwrap();
        assert_eq!(back, canonical);
        (form, wire)
    }

    #[test]
    fn a_repeated_block_is_one_byte_and_a_similar_one_refers_to_the_history() {
        let glyph: Vec<u8> = (0..60u32).map(|i| (i * 37 % 251) as u8).collect();
        let other: Vec<u8> = (0..40u32).map(|i| (i * 11 % 253) as u8).collect();
        let mut similar = glyph.clone();
        similar[59] ^= 1;
        let (mut sender, mut viewer) = (BlockHistory::default(), BlockHistory::default());
        let (form, wire) = round_trip(&mut sender, &mut viewer, &glyph);
        assert_eq!((form, wire), (BlockForm::Plain, plain(&glyph)));
        round_trip(&mut sender, &mut viewer, &other);
        // The glyph is now the second most recent block.
        assert_eq!(
            round_trip(&mut sender, &mut viewer, &glyph),
            (BlockForm::Repeat, vec![1])
        );
        assert_eq!(
            round_trip(&mut sender, &mut viewer, &glyph),
            (BlockForm::Repeat, vec![0])
        );
        // One match into the history and the 5 literal bytes lz4 ends a block with.
        let (form, wire) = round_trip(&mut sender, &mut viewer, &similar);
        assert_eq!(form, BlockForm::History);
        assert!(wire.len() <= 11, "{} bytes", wire.len());
    }

    #[test]
    fn the_window_and_the_recent_blocks_stay_bounded_and_clear_forgets() {
        let (mut sender, mut viewer) = (BlockHistory::default(), BlockHistory::default());
        for i in 0..200u32 {
            let bytes: Vec<u8> = (0..MAX_SMALL_BLOCK as u32)
                .map(|j| ((i * 7 + j * 13) % 256) as u8)
                .collect();
            round_trip(&mut sender, &mut viewer, &bytes);
            assert!(sender.bytes.len() <= 4 * WINDOW);
            assert!(sender.recent.len() <= RECENT_BLOCKS);
        }
        assert_eq!(sender.recent, viewer.recent);
        sender.clear();
        viewer.clear();
        assert!(sender.bytes.is_empty() && sender.recent.is_empty());
    }

    #[test]
    fn bad_blocks_are_errors() {
        let mut history = BlockHistory::default();
        let canonical = plain(&[5; 100]);
        let mut out = Vec::new();
        // The wrong size, either way, and bytes that are not lz4.
        assert_eq!(history.pack(&canonical, 99, &mut out), Err(BadBlock));
        assert_eq!(history.pack(&canonical, 101, &mut out), Err(BadBlock));
        for form in [BlockForm::Plain, BlockForm::History] {
            assert_eq!(
                history.unpack(&canonical, 99, form, &mut out),
                Err(BadBlock)
            );
            assert_eq!(
                history.unpack(&[0xff, 1, 2], 100, form, &mut out),
                Err(BadBlock)
            );
            // A back-reference past the start of an empty history.
            assert_eq!(
                history.unpack(&[0x0f, 9, 0, 0], 30, form, &mut out),
                Err(BadBlock)
            );
        }
        // A repeat of a block not kept, of another size, or of more than one byte.
        assert_eq!(
            history.unpack(&[0], 100, BlockForm::Repeat, &mut out),
            Err(BadBlock)
        );
        history
            .unpack(&canonical, 100, BlockForm::Plain, &mut out)
            .unwrap();
        assert_eq!(
            history.unpack(&[0], 99, BlockForm::Repeat, &mut out),
            Err(BadBlock)
        );
        assert_eq!(
            history.unpack(&[0, 0], 100, BlockForm::Repeat, &mut out),
            Err(BadBlock)
        );
        assert_eq!(
            history.unpack(&[1], 100, BlockForm::Repeat, &mut out),
            Err(BadBlock)
        );
        assert_eq!(history.recent.len(), 1, "nothing bad is remembered");
    }
}

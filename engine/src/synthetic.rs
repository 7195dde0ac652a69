//! [`SyntheticSource`]: deterministic, animated, desktop-like scenes at any resolution, for
//! tests, benchmarks and the demo.
//!
//! Every scene draws the same desktop (wallpaper, task bar, a text editor window, a video
//! player) and then animates one thing, touching only the pixels that change, as a real
//! desktop does. Each step reports the rectangles it changed, as an OS would report damage.

use crate::{CpuFrame, FrameBuffer, FrameError, PixelFormat, Rect, BYTES_PER_PIXEL};
use std::str::FromStr;

/// What moves on the synthetic desktop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scene {
    /// One character typed a frame into the editor, with a moving cursor.
    Typing,
    /// The editor's page scrolls up 4 pixels a frame.
    Scrolling,
    /// A small window is dragged across the desktop.
    Dragging,
    /// The video player shows a new picture every frame.
    Video,
    /// Nothing changes.
    Idle,
}

impl Scene {
    pub const ALL: [Scene; 5] = [
        Self::Typing,
        Self::Scrolling,
        Self::Dragging,
        Self::Video,
        Self::Idle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Typing => "typing",
            Self::Scrolling => "scrolling",
            Self::Dragging => "dragging",
            Self::Video => "video",
            Self::Idle => "idle",
        }
    }
}

impl FromStr for Scene {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scene| scene.name() == s)
            .ok_or_else(|| {
                format!("unknown scene {s:?}: expected typing, scrolling, dragging, video or idle")
            })
    }
}

const GLYPH_W: u32 = 8;
const GLYPH_H: u32 = 16;
const TITLE_H: u32 = 22;
const SCROLL_STEP: u32 = 4;
const WHITE: [u8; 3] = [250, 250, 247];
const INK: [u8; 3] = [32, 33, 36];
const TITLE: [u8; 3] = [52, 101, 164];
const TASKBAR: [u8; 3] = [40, 42, 54];

/// A synthetic screen that changes by one [`Scene`] step per [`SyntheticSource::advance`].
pub struct SyntheticSource {
    scene: Scene,
    frame: FrameBuffer,
    /// The desktop without the dragged window (dragging only).
    backdrop: Option<FrameBuffer>,
    index: u64,
    damage: Vec<Rect>,
    editor: Rect,
    player: Rect,
    dragged: Rect,
    cursor: (u32, u32),
    scrolled: u32,
}

impl SyntheticSource {
    /// Draws the desktop; frame 0 reports the whole screen as damage.
    pub fn new(
        scene: Scene,
        width: u32,
        height: u32,
        format: PixelFormat,
    ) -> Result<Self, FrameError> {
        let mut frame = FrameBuffer::new(width, height, format)?;
        let (w, h) = (width, height);
        let editor = Rect::new(w / 12, h / 12, w * 7 / 12, h * 3 / 4);
        let player = Rect::new(w * 2 / 3 + w / 24, h / 8, w / 4, (w / 4) * 9 / 16);
        let dragged = Rect::new(w / 20, h / 2, (w / 4).max(1), (h / 4).max(1));
        draw_wallpaper(&mut frame);
        fill(
            &mut frame,
            Rect::new(0, h.saturating_sub(h / 30 + 8), w, h / 30 + 8),
            TASKBAR,
        );
        draw_window(&mut frame, editor, 0);
        fill(&mut frame, player, [0, 0, 0]);
        let mut source = Self {
            scene,
            backdrop: None,
            index: 0,
            damage: vec![Rect::new(0, 0, width, height)],
            editor,
            player,
            dragged,
            cursor: (0, 0),
            scrolled: 0,
            frame,
        };
        match scene {
            Scene::Video => source.draw_video(),
            Scene::Dragging => {
                source.backdrop = Some(source.frame.clone());
                draw_window(&mut source.frame, dragged, 7);
            }
            _ => {}
        }
        Ok(source)
    }

    pub fn scene(&self) -> Scene {
        self.scene
    }

    /// The current frame.
    pub fn frame(&self) -> CpuFrame<'_> {
        self.frame.as_frame()
    }

    /// The current frame, owned.
    pub fn frame_buffer(&self) -> &FrameBuffer {
        &self.frame
    }

    /// Number of steps taken since the first frame.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Rectangles changed by the last step (the whole screen for frame 0).
    pub fn damage(&self) -> &[Rect] {
        &self.damage
    }

    /// Moves the scene one frame on.
    pub fn advance(&mut self) {
        self.index += 1;
        self.damage.clear();
        match self.scene {
            Scene::Typing => self.type_char(),
            Scene::Scrolling => self.scroll(),
            Scene::Dragging => self.drag(),
            Scene::Video => self.draw_video(),
            Scene::Idle => {}
        }
    }

    fn text_area(&self) -> Rect {
        let e = self.editor;
        Rect::new(
            e.x + 4,
            e.y + TITLE_H + 4,
            e.width.saturating_sub(8),
            e.height.saturating_sub(TITLE_H + 8),
        )
    }

    fn type_char(&mut self) {
        let area = self.text_area();
        let (cols, rows) = (area.width / GLYPH_W, area.height / GLYPH_H);
        if cols < 2 || rows < 1 {
            return;
        }
        let (col, row) = self.cursor;
        let ch = text_char(u64::from(row) * 131 + 7, col);
        let cell = Rect::new(
            area.x + col * GLYPH_W,
            area.y + row * GLYPH_H,
            GLYPH_W,
            GLYPH_H,
        );
        draw_glyph(&mut self.frame, cell.x, cell.y, ch);
        let (mut ncol, mut nrow) = (col + 1, row);
        if ncol + 1 >= cols {
            (ncol, nrow) = (0, row + 1);
        }
        if nrow >= rows {
            fill(&mut self.frame, area, WHITE);
            self.damage.push(area);
            (ncol, nrow) = (0, 0);
        } else {
            self.damage.push(cell);
        }
        self.cursor = (ncol, nrow);
        let next = Rect::new(area.x + ncol * GLYPH_W, area.y + nrow * GLYPH_H, 2, GLYPH_H);
        fill(&mut self.frame, next, INK);
        self.damage.push(next);
    }

    fn scroll(&mut self) {
        let area = self.text_area();
        if area.height <= SCROLL_STEP || area.width == 0 {
            return;
        }
        let stride = self.frame.stride();
        let (x0, len) = (
            area.x as usize * BYTES_PER_PIXEL,
            area.width as usize * BYTES_PER_PIXEL,
        );
        let px = self.frame.pixels_mut();
        for y in area.y..area.bottom() - SCROLL_STEP {
            let dst = y as usize * stride + x0;
            let src = (y + SCROLL_STEP) as usize * stride + x0;
            px.copy_within(src..src + len, dst);
        }
        self.scrolled += SCROLL_STEP;
        for k in 0..SCROLL_STEP {
            let y = area.bottom() - SCROLL_STEP + k;
            let virtual_row = self.scrolled + area.height - SCROLL_STEP + k;
            draw_text_row(&mut self.frame, area, y, virtual_row);
        }
        self.damage.push(area);
    }

    fn drag(&mut self) {
        let (w, h) = (self.frame.width(), self.frame.height());
        let old = self.dragged;
        let t = self.index as f64 / 60.0;
        let span_x = w.saturating_sub(old.width) as f64;
        let span_y = h.saturating_sub(old.height) as f64;
        let x = (span_x * (0.5 + 0.5 * (t * 1.3).sin())) as u32;
        let y = (span_y * (0.5 + 0.5 * (t * 0.9).cos())) as u32;
        let new = Rect::new(x, y, old.width, old.height);
        if new == old {
            return;
        }
        let backdrop = self.backdrop.as_ref().expect("dragging keeps a backdrop");
        copy_rect(&mut self.frame, backdrop, old);
        draw_window(&mut self.frame, new, 7);
        self.dragged = new;
        self.damage.push(old);
        self.damage.push(new);
    }

    fn draw_video(&mut self) {
        let p = self.player;
        let t = self.index as u32;
        let format = self.frame.format();
        let stride = self.frame.stride();
        let px = self.frame.pixels_mut();
        for y in p.y..p.bottom() {
            let row = &mut px[y as usize * stride..];
            for x in p.x..p.right() {
                let (u, v) = (x - p.x, y - p.y);
                let n = hash3(u, v, t) & 0x0F;
                let r = ((u + t * 3) & 0xFF) as u8 ^ n as u8;
                let g = ((v + t * 2) & 0xFF) as u8;
                let b = (((u ^ v) + t) & 0xFF) as u8;
                put(row, x, format, [r, g, b]);
            }
        }
        self.damage.push(p);
    }
}

fn hash3(a: u32, b: u32, c: u32) -> u32 {
    let mut h =
        a.wrapping_mul(0x9E37_79B1) ^ b.wrapping_mul(0x85EB_CA77) ^ c.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^ (h >> 12)
}

/// The character at `col` of text line `line`: words of letters separated by spaces.
fn text_char(line: u64, col: u32) -> u8 {
    let word = hash3(line as u32, col / 6, (line >> 32) as u32);
    if col % 6 == 5 || word.is_multiple_of(7) {
        b' '
    } else {
        b'a' + (hash3(line as u32, col, 1) % 26) as u8
    }
}

/// Writes one pixel of colour `rgb` at column `x` of `row` (a row slice from column 0).
#[inline]
fn put(row: &mut [u8], x: u32, format: PixelFormat, [r, g, b]: [u8; 3]) {
    let i = x as usize * BYTES_PER_PIXEL;
    let px = if format.is_bgr() {
        [b, g, r, 0xFF]
    } else {
        [r, g, b, 0xFF]
    };
    row[i..i + 4].copy_from_slice(&px);
}

fn fill(frame: &mut FrameBuffer, rect: Rect, rgb: [u8; 3]) {
    let Some(r) = rect.intersection(&Rect::new(0, 0, frame.width(), frame.height())) else {
        return;
    };
    let (format, stride) = (frame.format(), frame.stride());
    let px = frame.pixels_mut();
    for y in r.y..r.bottom() {
        let row = &mut px[y as usize * stride..];
        for x in r.x..r.right() {
            put(row, x, format, rgb);
        }
    }
}

fn copy_rect(dst: &mut FrameBuffer, src: &FrameBuffer, rect: Rect) {
    let Some(r) = rect.intersection(&Rect::new(0, 0, dst.width(), dst.height())) else {
        return;
    };
    let stride = dst.stride();
    let (x0, len) = (
        r.x as usize * BYTES_PER_PIXEL,
        r.width as usize * BYTES_PER_PIXEL,
    );
    for y in r.y..r.bottom() {
        let at = y as usize * stride + x0;
        dst.pixels_mut()[at..at + len].copy_from_slice(&src.pixels()[at..at + len]);
    }
}

fn draw_wallpaper(frame: &mut FrameBuffer) {
    let (w, h, format, stride) = (
        frame.width(),
        frame.height(),
        frame.format(),
        frame.stride(),
    );
    let px = frame.pixels_mut();
    for y in 0..h {
        let row = &mut px[y as usize * stride..];
        let t = y * 255 / h.max(1);
        for x in 0..w {
            let s = x * 64 / w.max(1);
            put(
                row,
                x,
                format,
                [(30 + t / 4) as u8, (60 + s) as u8, (110 + t / 3) as u8],
            );
        }
    }
}

/// A window: title bar and a white page of text. `seed` varies the text.
fn draw_window(frame: &mut FrameBuffer, rect: Rect, seed: u32) {
    fill(frame, rect, WHITE);
    fill(
        frame,
        Rect::new(rect.x, rect.y, rect.width, TITLE_H.min(rect.height)),
        TITLE,
    );
    let area = Rect::new(
        rect.x + 4,
        rect.y + TITLE_H + 4,
        rect.width.saturating_sub(8),
        rect.height.saturating_sub(TITLE_H + 8),
    );
    for y in area.y..area.bottom() {
        draw_text_row(frame, area, y, y - area.y + seed * GLYPH_H * 3);
    }
}

/// Draws pixel row `y` of `area` as row `virtual_row` of an endless page of text lines.
fn draw_text_row(frame: &mut FrameBuffer, area: Rect, y: u32, virtual_row: u32) {
    if y >= frame.height() {
        return;
    }
    let (format, stride) = (frame.format(), frame.stride());
    let line = u64::from(virtual_row / GLYPH_H);
    let glyph_row = virtual_row % GLYPH_H;
    let right = area.right().min(frame.width());
    let row = &mut frame.pixels_mut()[y as usize * stride..];
    for x in area.x..right {
        let col = (x - area.x) / GLYPH_W;
        let ch = if line % 5 == 4 {
            b' '
        } else {
            text_char(line, col)
        };
        let on = glyph_bit(ch, (x - area.x) % GLYPH_W, glyph_row);
        put(row, x, format, if on { INK } else { WHITE });
    }
}

fn draw_glyph(frame: &mut FrameBuffer, x0: u32, y0: u32, ch: u8) {
    let (format, stride) = (frame.format(), frame.stride());
    let (w, h) = (frame.width(), frame.height());
    let px = frame.pixels_mut();
    for gy in 0..GLYPH_H {
        let y = y0 + gy;
        if y >= h {
            break;
        }
        let row = &mut px[y as usize * stride..];
        for gx in 0..GLYPH_W {
            if x0 + gx < w {
                put(
                    row,
                    x0 + gx,
                    format,
                    if glyph_bit(ch, gx, gy) { INK } else { WHITE },
                );
            }
        }
    }
}

/// A made-up 8x16 glyph: a 5-pixel-wide pattern on rows 4..13, blank for a space.
fn glyph_bit(ch: u8, gx: u32, gy: u32) -> bool {
    if ch == b' ' || !(1..6).contains(&gx) || !(4..13).contains(&gy) {
        return false;
    }
    hash3(u32::from(ch), gy, 0x51) >> (gx + 3) & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_deterministic_and_report_their_damage() {
        for scene in Scene::ALL {
            let mut a = SyntheticSource::new(scene, 320, 200, PixelFormat::Bgra8).unwrap();
            let mut b = SyntheticSource::new(scene, 320, 200, PixelFormat::Bgra8).unwrap();
            for _ in 0..30 {
                let before = a.frame_buffer().clone();
                a.advance();
                b.advance();
                assert_eq!(
                    a.frame_buffer(),
                    b.frame_buffer(),
                    "{scene:?} not deterministic"
                );
                // Every changed pixel lies inside the reported damage.
                let (w, after) = (320usize, a.frame_buffer());
                for (i, (p, q)) in before
                    .pixels()
                    .chunks(4)
                    .zip(after.pixels().chunks(4))
                    .enumerate()
                {
                    if p != q {
                        let (x, y) = ((i % w) as u32, (i / w) as u32);
                        assert!(
                            a.damage()
                                .iter()
                                .any(|r| r.intersection(&Rect::new(x, y, 1, 1)).is_some()),
                            "{scene:?}: pixel {x},{y} changed outside damage"
                        );
                    }
                }
                if scene == Scene::Idle {
                    assert_eq!(&before, after);
                } else {
                    assert_ne!(&before, after, "{scene:?} did not change");
                }
            }
        }
    }

    #[test]
    fn tiny_and_odd_sizes_work() {
        for scene in Scene::ALL {
            for (w, h) in [(1, 1), (17, 9), (1021, 767)] {
                let mut s = SyntheticSource::new(scene, w, h, PixelFormat::Rgbx8).unwrap();
                for _ in 0..3 {
                    s.advance();
                }
            }
        }
        assert_eq!("video".parse::<Scene>(), Ok(Scene::Video));
        assert!("desktop".parse::<Scene>().is_err());
    }
}

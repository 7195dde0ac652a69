//! macOS capture through Core Graphics (`CGDisplayCreateImage`): the main display as a BGRA
//! image each grab. It is the fallback for systems without ScreenCaptureKit: no damage hints
//! (every tile is compared) and no pointer.

use crate::{Capture, CaptureError};
use core_graphics::display::CGDisplay;
use tessera_engine::{CpuFrame, PixelFormat, Rect};

/// The main display, grabbed as an image each time.
pub struct CgDisplayCapture {
    display: CGDisplay,
    width: u32,
    height: u32,
    stride: usize,
    pixels: Vec<u8>,
}

impl CgDisplayCapture {
    pub fn main_display() -> Result<Self, CaptureError> {
        let mut capture = Self {
            display: CGDisplay::main(),
            width: 0,
            height: 0,
            stride: 0,
            pixels: Vec::new(),
        };
        capture.grab()?;
        Ok(capture)
    }
}

impl Capture for CgDisplayCapture {
    fn grab(&mut self) -> Result<(), CaptureError> {
        let image = self.display.image().ok_or_else(|| {
            CaptureError::Unavailable(
                "the display image was refused (is screen recording allowed for this program?)"
                    .into(),
            )
        })?;
        if image.bits_per_pixel() != 32 {
            return Err(CaptureError::Unavailable(format!(
                "{}-bit display images",
                image.bits_per_pixel()
            )));
        }
        let (width, height, stride) = (image.width(), image.height(), image.bytes_per_row());
        let data = image.data();
        let bytes = data.bytes();
        if width == 0 || height == 0 || stride < width * 4 || bytes.len() < stride * height {
            return Err(CaptureError::Failed(format!(
                "a {width}x{height} display image with {stride} bytes a row and {} bytes",
                bytes.len()
            )));
        }
        self.width = width as u32;
        self.height = height as u32;
        self.stride = stride;
        self.pixels.clear();
        self.pixels.extend_from_slice(&bytes[..stride * height]);
        Ok(())
    }

    fn frame(&self) -> CpuFrame<'_> {
        CpuFrame::new(
            self.width,
            self.height,
            self.stride,
            PixelFormat::Bgrx8,
            &self.pixels,
        )
        .expect("checked at grab")
    }

    fn damage(&self) -> Option<&[Rect]> {
        None
    }

    fn describe(&self) -> String {
        format!(
            "macos display {} ({}x{})",
            self.display.id, self.width, self.height
        )
    }
}

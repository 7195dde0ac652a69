//! `--dump`: the last composited frame as a PNG.

use tessera_engine::FrameBuffer;

/// Writes `frame` as an 8-bit RGBA PNG (opaque formats get alpha 255).
pub fn write_png(frame: &FrameBuffer, path: &std::path::Path) -> Result<(), String> {
    let mut rgba = frame.canonical().pixels().to_vec();
    if frame.format().is_bgr() {
        for px in rgba.chunks_exact_mut(4) {
            px.swap(0, 2);
        }
    }
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut encoder =
        png::Encoder::new(std::io::BufWriter::new(file), frame.width(), frame.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgba).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

// Freeze-and-select (the vertex stage is fullscreen.wgsl): the frozen screen, darkened outside the rectangle being dragged, with a
// two-pixel border around it. Surface pixels map to frame pixels by `scale`.

struct Selection {
    // The rectangle in frame pixels: x0, y0, x1, y1 (x1 <= x0: nothing selected yet).
    rect: vec4<f32>,
    // Frame pixels per surface pixel.
    scale: vec2<f32>,
    _pad: vec2<f32>,
};

@group(0) @binding(0) var frozen: texture_2d<f32>;
@group(0) @binding(1) var<uniform> selection: Selection;

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let size = vec2<f32>(textureDimensions(frozen));
    let p = min(floor(position.xy * selection.scale), size - vec2<f32>(1.0));
    let color = textureLoad(frozen, vec2<i32>(p), 0).rgb;
    let r = selection.rect;
    let inside = p.x >= r.x && p.x < r.z && p.y >= r.y && p.y < r.w;
    if (!inside) {
        return vec4<f32>(color * 0.45, 1.0);
    }
    let border = p.x < r.x + 2.0 || p.x >= r.z - 2.0 || p.y < r.y + 2.0 || p.y >= r.w - 2.0;
    if (border) {
        return vec4<f32>(0.2, 0.6, 1.0, 1.0);
    }
    return vec4<f32>(color, 1.0);
}

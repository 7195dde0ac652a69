// Draws the composited frame into the window (the vertex stage is fullscreen.wgsl); each surface pixel
// inside the frame's placement shows the frame, everything else is black. At one frame pixel
// per surface pixel the texel is loaded exactly (no filtering), so the window shows the
// sender's pixels bit for bit; scaled, it is sampled bilinearly.

struct Placement {
    // Top-left corner and size of the frame on the surface, in surface pixels.
    origin: vec2<f32>,
    size: vec2<f32>,
    // 1 when size equals the frame's size: load texels, do not sample.
    exact: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
};

@group(0) @binding(0) var frame: texture_2d<f32>;
@group(0) @binding(1) var bilinear: sampler;
@group(0) @binding(2) var<uniform> placement: Placement;

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let local = position.xy - placement.origin;
    if (any(local < vec2<f32>(0.0)) || any(local >= placement.size)) {
        return vec4<f32>(0.0, 0.0, 0.0, 1.0);
    }
    if (placement.exact == 1u) {
        return vec4<f32>(textureLoad(frame, vec2<i32>(floor(local)), 0).rgb, 1.0);
    }
    let uv = local / placement.size;
    return vec4<f32>(textureSampleLevel(frame, bilinear, uv, 0.0).rgb, 1.0);
}

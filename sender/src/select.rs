//! Freeze-and-select (`--select`): the current screen, frozen, fills a window; the person drags
//! a rectangle (Esc cancels, releasing the button confirms), and sharing starts on that area.
//! When the rectangle matches a window, they are offered to follow that window instead (Enter)
//! or keep the area (Space). Drawn with `shaders/select.wgsl` on the engine's `WindowSurface`.

use std::sync::Arc;
use tessera_engine::{black_pass, fullscreen_pipeline, FrameBuffer, GpuError, Rect, WindowSurface};
use thiserror::Error;
use winit::application::ApplicationHandler;
use winit::dpi::{PhysicalPosition, PhysicalSize};
use winit::event::{ElementState, MouseButton, WindowEvent};
use winit::event_loop::{ActiveEventLoop, EventLoop};
use winit::keyboard::{Key, NamedKey};
use winit::window::{Window, WindowId};

/// A window the selection may turn out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowChoice {
    pub id: u32,
    pub title: String,
    pub rect: Rect,
}

/// What the person chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    Area(Rect),
    Window(WindowChoice),
}

#[derive(Debug, Error)]
pub enum SelectError {
    #[error("the selection was cancelled")]
    Cancelled,
    #[error("no display to select on ({0})")]
    NoDisplay(String),
    #[error("selection window: {0}")]
    Window(String),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// How far (pixels, each edge) a selection may be from a window and still be that window.
pub const WINDOW_MATCH_SLACK: u32 = 8;

/// The rectangle between two corners (inclusive of both pixels), clipped to `width` x `height`.
pub fn rect_between(a: (u32, u32), b: (u32, u32), (width, height): (u32, u32)) -> Option<Rect> {
    let (x0, x1) = (a.0.min(b.0), a.0.max(b.0).min(width.saturating_sub(1)));
    let (y0, y1) = (a.1.min(b.1), a.1.max(b.1).min(height.saturating_sub(1)));
    (x0 <= x1 && y0 <= y1 && x0 < width && y0 < height)
        .then(|| Rect::new(x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// The window whose edges all lie within [`WINDOW_MATCH_SLACK`] of the selection's, closest
/// first.
pub fn matching_window<'a>(
    selection: &Rect,
    windows: &'a [WindowChoice],
) -> Option<&'a WindowChoice> {
    let edges = |r: &Rect| [r.x, r.y, r.x + r.width, r.y + r.height];
    let s = edges(selection);
    windows
        .iter()
        .filter_map(|w| {
            let e = edges(&w.rect);
            let d: Vec<u32> = s.iter().zip(e).map(|(a, b)| a.abs_diff(b)).collect();
            d.iter()
                .all(|&d| d <= WINDOW_MATCH_SLACK)
                .then(|| (d.iter().sum::<u32>(), w))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, w)| w)
}

/// Shows `frozen` in a borderless window covering the screen and lets the person pick an area
/// (or one of `windows`). Runs its own event loop: call it on the main thread, once.
pub fn select_area(
    frozen: &FrameBuffer,
    windows: &[WindowChoice],
) -> Result<Selection, SelectError> {
    let event_loop = EventLoop::new().map_err(|e| SelectError::NoDisplay(e.to_string()))?;
    let mut app = SelectApp {
        frozen,
        windows,
        view: None,
        cursor: (0, 0),
        anchor: None,
        rect: None,
        offer: None,
        result: None,
    };
    event_loop
        .run_app(&mut app)
        .map_err(|e| SelectError::Window(e.to_string()))?;
    app.result.unwrap_or(Err(SelectError::Cancelled))
}

/// The selection uniform, laid out as `Selection` in the shader.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct SelectionUniform {
    rect: [f32; 4],
    scale: [f32; 2],
    _pad: [f32; 2],
}

struct View {
    window: Arc<Window>,
    surface: WindowSurface,
    pipeline: wgpu::RenderPipeline,
    bind_group: wgpu::BindGroup,
    uniform: wgpu::Buffer,
}

struct SelectApp<'a> {
    frozen: &'a FrameBuffer,
    windows: &'a [WindowChoice],
    view: Option<View>,
    /// The pointer, in frame pixels.
    cursor: (u32, u32),
    /// Where the drag started, while the button is down.
    anchor: Option<(u32, u32)>,
    rect: Option<Rect>,
    /// The selection matched this window: Enter follows it, Space keeps the area.
    offer: Option<(Rect, WindowChoice)>,
    result: Option<Result<Selection, SelectError>>,
}

const TITLE: &str = "Tessera — select the area to share (drag; Esc cancels)";

impl SelectApp<'_> {
    fn open(&mut self, event_loop: &ActiveEventLoop) -> Result<(), SelectError> {
        let (w, h) = (self.frozen.width(), self.frozen.height());
        let attributes = Window::default_attributes()
            .with_title(TITLE)
            .with_decorations(false)
            .with_position(PhysicalPosition::new(0, 0))
            .with_inner_size(PhysicalSize::new(w, h))
            .with_fullscreen(Some(winit::window::Fullscreen::Borderless(None)));
        let window = Arc::new(
            event_loop
                .create_window(attributes)
                .map_err(|e| SelectError::Window(e.to_string()))?,
        );
        let size = window.inner_size();
        let surface = WindowSurface::new(window.clone(), (size.width, size.height))?;
        let device = &surface.ctx.device;
        let texture = surface.ctx.create_frame_texture(&self.frozen.as_frame());
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("select"),
            source: wgpu::ShaderSource::Wgsl(
                concat!(
                    include_str!("../../shaders/fullscreen.wgsl"),
                    include_str!("../../shaders/select.wgsl")
                )
                .into(),
            ),
        });
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("selection"),
            size: std::mem::size_of::<SelectionUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let pipeline =
            fullscreen_pipeline(device, "select", &shader, None, surface.config().format);
        let view = texture.create_view(&Default::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("select"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::TextureView(&view),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: uniform.as_entire_binding(),
                },
            ],
        });
        window.request_redraw();
        self.view = Some(View {
            window,
            surface,
            pipeline,
            bind_group,
            uniform,
        });
        Ok(())
    }

    fn draw(&mut self) -> Result<(), SelectError> {
        let Some(v) = &mut self.view else {
            return Ok(());
        };
        let Some(target) = v.surface.acquire()? else {
            return Ok(());
        };
        let (sw, sh) = (v.surface.config().width, v.surface.config().height);
        let rect = self.rect.map_or([0.0; 4], |r| {
            [
                r.x as f32,
                r.y as f32,
                (r.x + r.width) as f32,
                (r.y + r.height) as f32,
            ]
        });
        let uniform = SelectionUniform {
            rect,
            scale: [
                self.frozen.width() as f32 / sw.max(1) as f32,
                self.frozen.height() as f32 / sh.max(1) as f32,
            ],
            _pad: [0.0; 2],
        };
        let ctx = &v.surface.ctx;
        ctx.queue
            .write_buffer(&v.uniform, 0, bytemuck::bytes_of(&uniform));
        let view = target.texture.texture.create_view(&Default::default());
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = black_pass(&mut encoder, &view);
            pass.set_pipeline(&v.pipeline);
            pass.set_bind_group(0, &v.bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        ctx.queue.submit([encoder.finish()]);
        v.surface.present(target);
        Ok(())
    }

    fn finish(&mut self, event_loop: &ActiveEventLoop, result: Result<Selection, SelectError>) {
        self.result = Some(result);
        event_loop.exit();
    }

    fn released(&mut self, event_loop: &ActiveEventLoop) {
        self.anchor = None;
        let Some(rect) = self.rect else { return };
        match matching_window(&rect, self.windows) {
            Some(w) => {
                if let Some(v) = &self.view {
                    v.window.set_title(&format!(
                        "Tessera — this is the window {:?}: Enter follows it, Space shares the area, Esc cancels",
                        w.title
                    ));
                }
                self.offer = Some((rect, w.clone()));
            }
            None => self.finish(event_loop, Ok(Selection::Area(rect))),
        }
    }
}

impl ApplicationHandler for SelectApp<'_> {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.view.is_none() && self.result.is_none() {
            if let Err(e) = self.open(event_loop) {
                self.finish(event_loop, Err(e));
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        match event {
            WindowEvent::CloseRequested => self.finish(event_loop, Err(SelectError::Cancelled)),
            WindowEvent::Resized(size) => {
                if let Some(v) = &mut self.view {
                    v.surface.resize(size.width, size.height);
                    v.window.request_redraw();
                }
            }
            WindowEvent::RedrawRequested => {
                if let Err(e) = self.draw() {
                    self.finish(event_loop, Err(e));
                }
            }
            WindowEvent::CursorMoved { position, .. } => {
                let Some(v) = &self.view else { return };
                let size = v.window.inner_size();
                let to_frame = |p: f64, surface: u32, frame: u32| {
                    ((p.max(0.0) * f64::from(frame) / f64::from(surface.max(1))) as u32)
                        .min(frame.saturating_sub(1))
                };
                self.cursor = (
                    to_frame(position.x, size.width, self.frozen.width()),
                    to_frame(position.y, size.height, self.frozen.height()),
                );
                if let Some(anchor) = self.anchor {
                    self.rect = rect_between(
                        anchor,
                        self.cursor,
                        (self.frozen.width(), self.frozen.height()),
                    );
                    v.window.request_redraw();
                }
            }
            WindowEvent::MouseInput {
                state,
                button: MouseButton::Left,
                ..
            } if self.offer.is_none() => match state {
                ElementState::Pressed => {
                    self.anchor = Some(self.cursor);
                    self.rect = None;
                }
                ElementState::Released => self.released(event_loop),
            },
            WindowEvent::KeyboardInput { event, .. } if event.state == ElementState::Pressed => {
                match (&event.logical_key, &self.offer) {
                    (Key::Named(NamedKey::Escape), _) => {
                        self.finish(event_loop, Err(SelectError::Cancelled))
                    }
                    (Key::Named(NamedKey::Enter), Some((_, w))) => {
                        let w = w.clone();
                        self.finish(event_loop, Ok(Selection::Window(w)));
                    }
                    (Key::Named(NamedKey::Space), Some((rect, _))) => {
                        let rect = *rect;
                        self.finish(event_loop, Ok(Selection::Area(rect)));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_make_a_rectangle_either_way_round() {
        let screen = (640, 480);
        assert_eq!(
            rect_between((10, 20), (109, 69), screen),
            Some(Rect::new(10, 20, 100, 50))
        );
        assert_eq!(
            rect_between((109, 69), (10, 20), screen),
            Some(Rect::new(10, 20, 100, 50))
        );
        assert_eq!(
            rect_between((5, 5), (5, 5), screen),
            Some(Rect::new(5, 5, 1, 1))
        );
        assert_eq!(
            rect_between((600, 400), (9999, 9999), screen),
            Some(Rect::new(600, 400, 40, 80))
        );
        assert_eq!(rect_between((700, 0), (800, 10), screen), None);
    }

    #[test]
    fn a_selection_close_to_a_window_is_that_window() {
        let windows = vec![
            WindowChoice {
                id: 1,
                title: "big".into(),
                rect: Rect::new(0, 0, 600, 400),
            },
            WindowChoice {
                id: 2,
                title: "xterm".into(),
                rect: Rect::new(100, 80, 244, 140),
            },
        ];
        let near = Rect::new(103, 78, 240, 145);
        assert_eq!(matching_window(&near, &windows).map(|w| w.id), Some(2));
        let off = Rect::new(100, 80, 200, 140);
        assert_eq!(matching_window(&off, &windows), None);
    }
}

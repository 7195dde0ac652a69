//! Command-line parsing helpers shared by both binaries.

use tessera_engine::Rect;

/// Parses `x,y,w,h`.
pub fn parse_region(s: &str) -> Result<Rect, String> {
    let parts: Vec<&str> = s.split(',').collect();
    let nums: Result<Vec<u32>, _> = parts.iter().map(|p| p.trim().parse::<u32>()).collect();
    match nums {
        Ok(n) if n.len() == 4 && n[2] > 0 && n[3] > 0 => Ok(Rect::new(n[0], n[1], n[2], n[3])),
        _ => Err(format!(
            "region {s:?}: expected x,y,w,h with w and h above 0"
        )),
    }
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("size {s:?}: expected WIDTHxHEIGHT, e.g. 1920x1080");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h) = (
        w.trim().parse::<u32>().map_err(|_| bad())?,
        h.trim().parse::<u32>().map_err(|_| bad())?,
    );
    tessera_engine::check_dimensions(w, h).map_err(|e| format!("size {s:?}: {e}"))?;
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(parse_region("1,2,3,4"), Ok(Rect::new(1, 2, 3, 4)));
        for bad in ["1,2,3", "1,2,0,4", "a,b,c,d", "1,2,3,4,5", "-1,2,3,4"] {
            assert!(parse_region(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("640x480"), Ok((640, 480)));
        for bad in ["640", "0x10", "x", "99999x10", "10x-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}

//! The terminal while `top` runs: raw mode and the alternate screen, left
//! again however `top` ends — normally, by an error, or by a panic.

use crossterm::cursor::{Hide, MoveTo, Show};
use crossterm::style::Print;
use crossterm::terminal::{
    self, disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen,
    LeaveAlternateScreen,
};
use crossterm::{execute, queue};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// Whether the terminal is in `top`'s state and must be restored.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back: main screen, cursor shown, cooked mode. Does
/// nothing when it was not taken, or was already given back.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), Show, LeaveAlternateScreen);
        let _ = disable_raw_mode();
    }
}

/// The terminal, held in raw mode on the alternate screen until dropped.
pub struct Screen {
    out: io::Stdout,
}

impl Screen {
    /// Takes the terminal. Fails when there is none (e.g. output to a
    /// pipe), leaving it as it was.
    pub fn take() -> io::Result<Screen> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen, Hide) {
            restore();
            return Err(e);
        }
        Ok(Screen { out })
    }

    /// The terminal's size: columns, rows.
    pub fn size(&self) -> io::Result<(usize, usize)> {
        let (w, h) = terminal::size()?;
        Ok((w as usize, h as usize))
    }

    /// Draws `lines` (already cut to the screen, `height` rows) from the
    /// top left, clearing what an earlier frame left below or beside them.
    pub fn draw(&mut self, lines: &[String], height: usize) -> io::Result<()> {
        for (row, l) in lines.iter().enumerate() {
            // Clearing before printing: a line that fills the width leaves
            // the cursor on the last column, where clearing to the end of
            // the line would erase the last character.
            queue!(
                self.out,
                MoveTo(0, row as u16),
                Clear(ClearType::CurrentLine),
                Print(l)
            )?;
        }
        if lines.len() < height {
            queue!(
                self.out,
                MoveTo(0, lines.len() as u16),
                Clear(ClearType::FromCursorDown)
            )?;
        }
        self.out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

//! A pool of ONNX Runtime sessions. `Session::run` takes `&mut self`, so
//! concurrent encoders each borrow one; a caller waits while all are busy.

use std::sync::{Condvar, Mutex};

use ort::session::Session;

/// Sessions of one model, lent to one caller at a time.
pub struct SessionPool {
    idle: Mutex<Vec<Session>>,
    returned: Condvar,
}

impl SessionPool {
    /// A pool of these sessions.
    pub fn new(sessions: Vec<Session>) -> Self {
        Self {
            idle: Mutex::new(sessions),
            returned: Condvar::new(),
        }
    }

    /// Runs `f` on an idle session, waiting for one if need be. The session
    /// goes back to the pool even if `f` unwinds.
    pub fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        let session = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(s) = idle.pop() {
                    break s;
                }
                idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
            }
        };
        struct Return<'a>(&'a SessionPool, Option<Session>);
        impl Drop for Return<'_> {
            fn drop(&mut self) {
                if let Some(s) = self.1.take() {
                    self.0
                        .idle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(s);
                    self.0.returned.notify_one();
                }
            }
        }
        let mut guard = Return(self, Some(session));
        f(guard.1.as_mut().expect("just put there"))
    }
}

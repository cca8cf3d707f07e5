//! Server-side sessions: the browser holds only a random 256-bit id (in an HttpOnly, Secure,
//! SameSite=Lax cookie); who the person is, the form token and the language stay here. A
//! session ends when idle for `idle`, at `max` after sign-in, or at sign-out.
//!
//! Time is passed in (`now`), so that expiry is tested without waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keten_domain::{PartnerId, PersonId, Role};

/// Who signed in: what the need-to-know rules are asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub person: PersonId,
    pub partner: PartnerId,
    pub role: Role,
    /// How the person signed in, for the log: `local` or `oidc`.
    pub via: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Nl,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub person: Person,
    /// Every form that posts carries it; a post without it is refused.
    pub csrf: String,
    pub lang: Lang,
    started: Instant,
    last_seen: Instant,
}

/// A sign-in through the identity provider under way: what the callback must match.
#[derive(Debug, Clone)]
pub struct Pending {
    pub nonce: String,
    pub verifier: String,
    pub lang: Lang,
    started: Instant,
}

/// How long a pending OpenID Connect sign-in may take.
const PENDING_FOR: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Mutex<Table>>,
    idle: Duration,
    max: Duration,
}

#[derive(Default)]
struct Table {
    sessions: HashMap<String, Session>,
    /// By OAuth `state`.
    pending: HashMap<String, Pending>,
}

/// A fresh random 256-bit value, URL-safe base64.
pub fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    pub fn new(idle: Duration, max: Duration) -> Self {
        Self {
            inner: Arc::default(),
            idle,
            max,
        }
    }

    /// A new session for `person`; its id (the cookie's value).
    pub fn start(&self, person: Person, lang: Lang, now: Instant) -> String {
        let id = random_token();
        let session = Session {
            person,
            csrf: random_token(),
            lang,
            started: now,
            last_seen: now,
        };
        let mut table = self.inner.lock().expect("sessions lock");
        table
            .sessions
            .retain(|_, s| alive(s, now, self.idle, self.max));
        table.sessions.insert(id.clone(), session);
        id
    }

    /// Whether the session is alive at `now`, without counting as activity: an open live page
    /// is not a person at work, and must not keep a session from expiring.
    pub fn is_alive(&self, id: &str, now: Instant) -> bool {
        let table = self.inner.lock().expect("sessions lock");
        table
            .sessions
            .get(id)
            .is_some_and(|s| alive(s, now, self.idle, self.max))
    }

    /// The session if it is alive at `now`, which counts as activity; an expired one is removed.
    pub fn touch(&self, id: &str, now: Instant) -> Option<Session> {
        let mut table = self.inner.lock().expect("sessions lock");
        let session = table.sessions.get_mut(id)?;
        if !alive(session, now, self.idle, self.max) {
            table.sessions.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn set_lang(&self, id: &str, lang: Lang) {
        if let Some(s) = self
            .inner
            .lock()
            .expect("sessions lock")
            .sessions
            .get_mut(id)
        {
            s.lang = lang;
        }
    }

    /// Sign-out: the id is worth nothing afterwards.
    pub fn end(&self, id: &str) {
        self.inner
            .lock()
            .expect("sessions lock")
            .sessions
            .remove(id);
    }

    /// Remembers a sign-in sent to the identity provider; its `state`.
    pub fn begin_pending(
        &self,
        nonce: String,
        verifier: String,
        lang: Lang,
        now: Instant,
    ) -> String {
        let state = random_token();
        let mut table = self.inner.lock().expect("sessions lock");
        table
            .pending
            .retain(|_, p| now.saturating_duration_since(p.started) < PENDING_FOR);
        table.pending.insert(
            state.clone(),
            Pending {
                nonce,
                verifier,
                lang,
                started: now,
            },
        );
        state
    }

    /// The pending sign-in for `state`, once: a replayed callback finds nothing.
    pub fn take_pending(&self, state: &str, now: Instant) -> Option<Pending> {
        let pending = self
            .inner
            .lock()
            .expect("sessions lock")
            .pending
            .remove(state)?;
        (now.saturating_duration_since(pending.started) < PENDING_FOR).then_some(pending)
    }
}

fn alive(s: &Session, now: Instant, idle: Duration, max: Duration) -> bool {
    now.saturating_duration_since(s.last_seen) < idle
        && now.saturating_duration_since(s.started) < max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Person {
        Person {
            person: PersonId::new("coord-sanne").unwrap(),
            partner: PartnerId::new("gemeente").unwrap(),
            role: Role::Coordinator,
            via: "local",
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_session_ends_when_idle_for_its_lifetime_and_activity_keeps_it() {
        let sessions = Sessions::new(30 * MIN, 600 * MIN);
        let t0 = Instant::now();
        let id = sessions.start(person(), Lang::Nl, t0);
        assert!(sessions.touch(&id, t0 + 29 * MIN).is_some());
        // Activity at 29 minutes moved the idle clock.
        assert!(sessions.touch(&id, t0 + 58 * MIN).is_some());
        assert!(sessions.touch(&id, t0 + 88 * MIN).is_none());
        // And it stays gone.
        assert!(sessions.touch(&id, t0 + 88 * MIN).is_none());
    }

    #[test]
    fn a_busy_session_still_ends_at_its_maximum() {
        let sessions = Sessions::new(30 * MIN, 60 * MIN);
        let t0 = Instant::now();
        let id = sessions.start(person(), Lang::En, t0);
        for m in (10..60).step_by(10) {
            assert!(sessions.touch(&id, t0 + m * MIN).is_some(), "{m}");
        }
        assert!(sessions.touch(&id, t0 + 60 * MIN).is_none());
    }

    #[test]
    fn sign_out_ends_the_session_and_ids_are_unguessable() {
        let sessions = Sessions::new(30 * MIN, 60 * MIN);
        let t0 = Instant::now();
        let a = sessions.start(person(), Lang::Nl, t0);
        let b = sessions.start(person(), Lang::Nl, t0);
        assert_ne!(a, b);
        // 32 bytes, base64 without padding.
        assert_eq!(a.len(), 43);
        sessions.end(&a);
        assert!(sessions.touch(&a, t0).is_none());
        assert!(sessions.touch(&b, t0).is_some());
    }

    #[test]
    fn a_pending_sign_in_is_taken_once() {
        let sessions = Sessions::new(30 * MIN, 60 * MIN);
        let t0 = Instant::now();
        let state = sessions.begin_pending("n".into(), "v".into(), Lang::Nl, t0);
        assert_eq!(sessions.take_pending(&state, t0).unwrap().nonce, "n");
        assert!(sessions.take_pending(&state, t0).is_none());
        let late = sessions.begin_pending("n".into(), "v".into(), Lang::Nl, t0);
        assert!(sessions.take_pending(&late, t0 + 11 * MIN).is_none());
    }
}

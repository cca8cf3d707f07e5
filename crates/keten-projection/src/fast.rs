//! A faster decoder for the events keten writes itself, for folds that decode the whole log.
//!
//! The domain's `Event` is an internally tagged enum (`{"type":"GoalSet",...}`). serde reads
//! such an enum by buffering every field into an intermediate tree, finding the tag, and then
//! reading the variant from the tree: about twice the work of reading a struct. keten's encoder
//! writes the envelope as `{"schema":N,"event":{"type":...,...}}` with the tag first, so this
//! decoder reads the tag, then the rest of the object straight into the variant's fields.
//!
//! It only ever answers for input it fully understands; anything else (another key order, a
//! duplicate field, trailing data) is an error on which the caller falls back to the domain's
//! own decoder. So it accepts nothing the domain would refuse, and where both accept they agree
//! (a test checks every event type). Each variant is built with an exhaustive struct literal:
//! a field added to the domain's event breaks this build rather than being dropped.

use std::fmt;

use chrono::NaiveDate;
use keten_domain::catalogue::InterventionCode;
use keten_domain::zrm::ZrmAssessment;
use keten_domain::{
    ActionId, ChainLevel, ClosureReason, ErasureGround, Event, FamilyId, FamilyType, GoalId,
    HoldId, LegalGround, LifeDomain, MemberFlags, MemberId, MemberRole, PartnerId, PartnerKind,
    PersonId, Rung, Urgency,
};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

/// Decodes an envelope of exactly `schema` as keten's encoder writes it; `Err` means "not in
/// that shape", not necessarily "invalid".
pub(crate) fn decode(bytes: &[u8], schema: u16) -> Result<Event, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let event = de.deserialize_map(EnvelopeVisitor { schema })?;
    de.end()?;
    Ok(event)
}

struct EnvelopeVisitor {
    schema: u16,
}

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        if map.next_key::<&str>()? != Some("schema") {
            return Err(de::Error::custom("`schema` is not the first key"));
        }
        if map.next_value::<u16>()? != self.schema {
            return Err(de::Error::custom("another schema"));
        }
        if map.next_key::<&str>()? != Some("event") {
            return Err(de::Error::custom("`event` is not the second key"));
        }
        let event = map.next_value_seed(EventSeed)?;
        if map.next_key::<&str>()?.is_some() {
            return Err(de::Error::custom("more keys after `event`"));
        }
        Ok(event)
    }
}

struct EventSeed;

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = Event;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Event, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        if map.next_key::<&str>()? != Some("type") {
            return Err(de::Error::custom("`type` is not the first key"));
        }
        let ty: &str = map.next_value()?;
        variant(ty, map)
    }
}

macro_rules! variants {
    ($($name:ident { $($(#[$attr:meta])* $field:ident : $ty:ty),* $(,)? }),* $(,)?) => {
        #[allow(non_snake_case)]
        mod fields {
            use super::*;
            $(
                #[derive(Deserialize)]
                pub(super) struct $name {
                    $($(#[$attr])* pub(super) $field: $ty,)*
                    /// A second tag, which the domain's decoder refuses.
                    #[serde(default, rename = "type")]
                    pub(super) again: Option<de::IgnoredAny>,
                }
            )*
        }

        fn variant<'de, A: MapAccess<'de>>(ty: &str, map: A) -> Result<Event, A::Error> {
            match ty {
                $(stringify!($name) => {
                    let v = fields::$name::deserialize(MapAccessDeserializer::new(map))?;
                    if v.again.is_some() {
                        return Err(de::Error::duplicate_field("type"));
                    }
                    Ok(Event::$name { $($field: v.$field,)* })
                })*
                other => Err(de::Error::unknown_variant(other, &Event::TYPE_NAMES)),
            }
        }
    };
}

variants! {
    FamilyRegistered { family_id: FamilyId, family_type: FamilyType, urgency: Urgency, occurred_on: NaiveDate },
    FamilyTypeChanged { family_type: FamilyType, urgency: Urgency, reason: String, occurred_on: NaiveDate },
    MemberAdded { member_id: MemberId, role: MemberRole, birth_year: i32, #[serde(default)] flags: MemberFlags, occurred_on: NaiveDate },
    MemberLeft { member_id: MemberId, reason: String, occurred_on: NaiveDate },
    PartnerJoined { partner_id: PartnerId, partner_kind: PartnerKind, display_name: String, occurred_on: NaiveDate },
    PartnerLeft { partner_id: PartnerId, reason: String, occurred_on: NaiveDate },
    MatchSettled { lead_partner_id: PartnerId, contacted_on: NaiveDate, occurred_on: NaiveDate },
    FamilyManagerAssigned { manager: PersonId, partner_id: PartnerId, #[serde(default)] reason: Option<String>, occurred_on: NaiveDate },
    LeadPartnerSet { partner_id: PartnerId, reason: String, occurred_on: NaiveDate },
    PlanAgreed { agreed_on: NaiveDate, review_moments: Vec<NaiveDate>, occurred_on: NaiveDate },
    PlanExtended { new_horizon: NaiveDate, reason: String, occurred_on: NaiveDate },
    GoalSet { goal_id: GoalId, life_domain: LifeDomain, description: String, #[serde(default)] target_date: Option<NaiveDate>, occurred_on: NaiveDate },
    ActionCommitted { action_id: ActionId, goal_id: GoalId, partner_id: PartnerId, member_ids: Vec<MemberId>, #[serde(default)] intervention: Option<InterventionCode>, description: String, start_on: NaiveDate, expected_end: NaiveDate, occurred_on: NaiveDate },
    ActionStarted { action_id: ActionId, occurred_on: NaiveDate },
    ActionDelivered { action_id: ActionId, occurred_on: NaiveDate },
    ActionNotDelivered { action_id: ActionId, reason: String, occurred_on: NaiveDate },
    ActionDeadlineExtended { action_id: ActionId, new_expected_end: NaiveDate, reason: String, occurred_on: NaiveDate },
    GoalAchieved { goal_id: GoalId, occurred_on: NaiveDate },
    GoalAbandoned { goal_id: GoalId, reason: String, occurred_on: NaiveDate },
    ReviewHeld { #[serde(default)] zrm: Vec<ZrmAssessment>, #[serde(default)] next_review: Option<NaiveDate>, occurred_on: NaiveDate },
    CooperationRefused { reason: String, occurred_on: NaiveDate },
    PlanClosed { reason: ClosureReason, occurred_on: NaiveDate },
    MonitoringStarted { until: NaiveDate, visit_interval_days: u16, occurred_on: NaiveDate },
    MonitoringVisitRecorded { occurred_on: NaiveDate },
    HomeVisitRecorded { occurred_on: NaiveDate },
    EscalationRaised { to: Rung, by: PersonId, reason: String, legal_basis: String, occurred_on: NaiveDate },
    EscalationLowered { to: Rung, by: PersonId, reason: String, legal_basis: String, occurred_on: NaiveDate },
    ChainEscalationRaised { action_id: ActionId, partner_id: PartnerId, level: ChainLevel, reason: String, occurred_on: NaiveDate },
    ChainEscalationResolved { action_id: ActionId, resolution: String, occurred_on: NaiveDate },
    FamilyInformed { occurred_on: NaiveDate },
    InformingDeferred { reason: String, until: NaiveDate, occurred_on: NaiveDate },
    PoliceContactRecorded { #[serde(default)] member_id: Option<MemberId>, occurred_on: NaiveDate },
    NuisanceReported { description: String, occurred_on: NaiveDate },
    ErasureRequested { requester: MemberId, occurred_on: NaiveDate },
    LegalHoldPlaced { hold_id: HoldId, ground: LegalGround, reason: String, occurred_on: NaiveDate },
    LegalHoldLifted { hold_id: HoldId, reason: String, occurred_on: NaiveDate },
    FamilyErased { ground: ErasureGround, #[serde(default)] notified: Vec<PartnerId>, occurred_on: NaiveDate },
}

#[cfg(test)]
mod tests {
    use keten_domain::CURRENT_SCHEMA;

    use super::*;

    #[test]
    fn agrees_with_the_domain_on_every_event_type() {
        let events = crate::snapshot::tests::every_event();
        for event in &events {
            let bytes = keten_domain::encode(event);
            let fast = decode(&bytes, CURRENT_SCHEMA).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}: {}",
                    event.type_name(),
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_eq!(&fast, event);
            assert_eq!(keten_domain::decode(&bytes).unwrap(), fast);
        }
    }

    #[test]
    fn answers_only_for_the_encoders_shape() {
        let ok = br#"{"schema":2,"event":{"type":"HomeVisitRecorded","occurred_on":"2026-01-05"}}"#;
        assert!(decode(ok, 2).is_ok());
        for other in [
            &br#"{"event":{"type":"HomeVisitRecorded","occurred_on":"2026-01-05"},"schema":2}"#[..],
            br#"{"schema":2,"event":{"occurred_on":"2026-01-05","type":"HomeVisitRecorded"}}"#,
            br#"{"schema":2,"event":{"type":"HomeVisitRecorded","occurred_on":"2026-01-05","occurred_on":"2026-01-05"}}"#,
            br#"{"schema":2,"event":{"type":"HomeVisitRecorded","occurred_on":"2026-01-05"},"x":1}"#,
            br#"{"schema":2,"event":{"type":"HomeVisitRecorded","occurred_on":"2026-01-05"}} x"#,
            br#"{"schema":1,"event":{"type":"HomeVisitRecorded","occurred_on":"2026-01-05"}}"#,
            br#"{"schema":2,"event":{"type":"Nope","occurred_on":"2026-01-05"}}"#,
            br#"{"schema":2,"event":{"type":"HomeVisitRecorded","type":"HomeVisitRecorded","occurred_on":"2026-01-05"}}"#,
            br#"{"schema":2,"event":{"type":"HomeVisitRecorded","occurred_on":"soon"}}"#,
        ] {
            assert!(decode(other, 2).is_err(), "{}", String::from_utf8_lossy(other));
        }
        // A family id the domain refuses (nine digits: a BSN) is refused here as well.
        let bsn = br#"{"schema":2,"event":{"type":"FamilyRegistered","family_id":"123456782","family_type":"stut_en_steun","urgency":"normal","occurred_on":"2026-01-05"}}"#;
        assert!(decode(bsn, 2).is_err());
        assert!(keten_domain::decode(bsn).is_err());
    }
}

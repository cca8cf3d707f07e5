pub struct Plan;
pub struct Warning;
pub enum WarningKind {}
pub fn coordinated_plan() {}

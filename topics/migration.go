package topics

// Migration topics and event types. A saga in shadow mode publishes its
// would-be outcome to ShadowOutcomes (never to Outcomes, which consumers
// act on) and each disagreement with the legacy flow to Divergences.
const (
	ShadowOutcomes = "sagabridge.shadow.outcomes"
	Divergences    = "sagabridge.divergences"

	// DivergenceType is the CloudEvent type of a divergence event.
	DivergenceType = "sagabridge.migration.divergence"
)

// Migration modes: how an instance is driven. A saga configured as canary
// runs each instance in one of the two, chosen at start and kept.
const (
	ModeShadow = "shadow"
	ModeActive = "active"
)

// Divergence kinds: how the legacy flow differed from what the saga did or
// would have done.
const (
	// DivergenceMissingStep: the legacy flow went on past a step it never
	// performed.
	DivergenceMissingStep = "missing-step"
	// DivergenceOutOfOrder: the legacy flow performed a step (or undid one)
	// before one the saga runs first.
	DivergenceOutOfOrder = "out-of-order"
	// DivergenceCompensationMissing: the saga would have undone a step and
	// the legacy flow never did.
	DivergenceCompensationMissing = "compensation-missing"
	// DivergenceUnexpectedCompensation: the legacy flow undid a step the
	// saga would have kept.
	DivergenceUnexpectedCompensation = "unexpected-compensation"
	// DivergenceStuck: the legacy flow showed no progress within the
	// step's timeout.
	DivergenceStuck = "stuck"
)

// Divergence is one disagreement, in a shadow outcome and as the data of a
// divergence event (subject = instance ID).
type Divergence struct {
	Saga       string `json:"saga,omitempty"`
	InstanceID string `json:"instanceId,omitempty"`
	Kind       string `json:"kind"`
	Step       string `json:"step"`
	Detail     string `json:"detail"`
}

// DivergenceID is the stable CloudEvent id of a divergence: a replayed
// saga publishes the same one again and consumers dedupe on it.
func DivergenceID(instanceID, kind, step string) string {
	return instanceID + "/divergence/" + kind + "/" + step
}

// Migration is what an outcome says about how its instance was driven.
type Migration struct {
	// Mode is how this instance ran: shadow (observed the legacy flow and
	// sent nothing) or active (drove the participants).
	Mode string `json:"mode"`
	// Stage is the saga's configured mode when the instance started:
	// shadow, canary or active.
	Stage   string `json:"stage"`
	Percent int    `json:"percent"`
	// Bucket is the instance's place (0..99) on the canary scale: the
	// saga drives it when Bucket < Percent.
	Bucket      int          `json:"bucket"`
	Divergences []Divergence `json:"divergences,omitempty"`
}

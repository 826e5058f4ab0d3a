package deliveries

// The listing's, a delivery's and the health check's answers, for the tests to decode
// answers into. TestListEvents/EveryField pins the JSON names and values of an item,
// TestHealth/Healthy those of the health check.
type (
	EventItem   = eventItem
	EventList   = eventList
	EventDetail = eventDetail
	Health      = health
)

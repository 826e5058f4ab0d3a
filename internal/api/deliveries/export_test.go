package deliveries

// The listing's and a delivery's answers, for the tests to decode answers into.
// TestListEvents/EveryField pins the JSON names and values of an item.
type (
	EventItem   = eventItem
	EventList   = eventList
	EventDetail = eventDetail
)

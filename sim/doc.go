// Package sim is a small simulated exchange: the market the demo shows and
// the load the appliance is tested under. It has two parts.
//
// Market is a random walk of each instrument's book: up to 20 real-looking
// contracts (SHFE.cu2501, DCE.m2501, CFFEX.IF2501, ...; DefaultInstruments),
// prices held in whole ticks, one tick of spread, five levels a side, market
// trades printing at the touch. Step advances one instrument and fills a
// schema.Tick; the walk is deterministic for a seed.
//
// Exchange matches simulated users' orders (schema.OrderRequest and
// CancelRequest, as DIFF clients send them) against that book and keeps
// their accounts and positions the way a futures broker does. It emits
// Order, Trade, Position, Account, Transfer and Notify events whose numbers
// obey DIFF's identities (../shared/spec/DIFF.md) after every event:
//
//	static_balance = pre_balance + deposit − withdraw
//	balance        = static_balance + close_profit − commission − premium + position_profit
//	available      = balance − margin − frozen_margin − frozen_commission − frozen_premium
//
// Rules: limit prices must sit on the tick grid inside the daily price
// limits; volumes inside the instrument's per-order limits; market orders
// (ANY, BEST, FIVELEVEL) trade immediately-or-cancel through one or five
// levels; VolumeCondition ALL is fill-or-kill; opening needs margin plus
// commission available; closing needs unfrozen lots. A rejected request
// becomes a FINISHED order whose last_msg names the rule and the limit; a
// reused order id, or a cancel of an unknown or finished order, gets an
// ERROR notify so no existing order is ever overwritten. Accounts open with
// Config.InitialBalance the first time a user sends anything.
//
// Run is the simulator process (`appliance sim`): it attaches as publisher
// to the appliance's "ticks" and "trades" topics, publishes each
// instrument's reference data and then a quote per market step at the
// configured rate, answers requests read from the "requests" topic, and
// publishes everything the exchange emits. Optional simulated traders place
// random orders so a demo shows fills without any client. A request frame
// that fails verification is answered with an ERROR notify; a full reliable
// topic makes the simulator wait, never drop.
//
// Concurrency: Market and Exchange belong to one goroutine. Events handed to
// an Emit are valid only during the call (the exchange reuses its state), so
// a receiver builds its frame from them at once or copies them.
package sim

package compensations

import (
	"errors"
	"fmt"
	"time"
)

// Backoff is how long a saga waits between attempts of a step or a
// compensation. It lives here, not in sagas, because both steps and
// compensations use it and sagas imports this package, not the reverse.
//
// The wait before attempt n+1 is Initial·Multiplier^(n-1), capped at Max.
// The saga waits on a durable timer, so a worker restart does not shorten
// or repeat the wait.
type Backoff struct {
	// Initial is the wait after the first failed attempt; 0 retries at once.
	Initial time.Duration `json:"initial,omitempty"`
	// Max caps the wait; 0 means no cap.
	Max time.Duration `json:"max,omitempty"`
	// Multiplier grows the wait per attempt; 0 means 2, 1 keeps it constant.
	Multiplier float64 `json:"multiplier,omitempty"`
}

// Validate reports every problem at once.
func (b Backoff) Validate() error {
	var errs []error
	if b.Initial < 0 {
		errs = append(errs, fmt.Errorf("backoff: initial %s is negative", b.Initial))
	}
	if b.Max < 0 {
		errs = append(errs, fmt.Errorf("backoff: max %s is negative", b.Max))
	}
	if b.Multiplier != 0 && b.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("backoff: multiplier %v is below 1", b.Multiplier))
	}
	if b.Max > 0 && b.Initial > b.Max {
		errs = append(errs, errors.New("backoff: initial is above max"))
	}
	return errors.Join(errs...)
}

// Delay is the wait after failed attempt n (1-based) before the next one.
// It is pure arithmetic, so orchestrators may call it.
func (b Backoff) Delay(n int) time.Duration {
	if b.Initial <= 0 || n < 1 {
		return 0
	}
	mult := b.Multiplier
	if mult == 0 {
		mult = 2
	}
	d := float64(b.Initial)
	for i := 1; i < n; i++ {
		d *= mult
		if b.Max > 0 && d >= float64(b.Max) {
			return b.Max
		}
		if d > float64(24*time.Hour*365) {
			break // far beyond any sensible wait; stop before overflow
		}
	}
	out := time.Duration(d)
	if b.Max > 0 && out > b.Max {
		return b.Max
	}
	return out
}

package channel

import (
	"encoding/json"
	"slices"

	"github.com/herald-release/herald/internal/validate"
)

// NewKind makes a channel type out of what is its own: its "type", its
// secret fields, the parser of its config (C) and the sender a parsed
// config makes. Validate is what parse refuses; New parses again without
// the egress check, which is made again at connect time, so that a config
// saved under an older policy still builds.
func NewKind[C any](typ string, secretFields []string, parse func(json.RawMessage, Deps) (C, validate.Errors), newSender func(C, Deps) Sender) Kind {
	return kind[C]{typ: typ, secretFields: secretFields, parse: parse, newSender: newSender}
}

type kind[C any] struct {
	typ          string
	secretFields []string
	parse        func(json.RawMessage, Deps) (C, validate.Errors)
	newSender    func(C, Deps) Sender
}

func (k kind[C]) Type() string { return k.typ }

func (k kind[C]) SecretFields() []string { return slices.Clone(k.secretFields) }

func (k kind[C]) Validate(cfg json.RawMessage, deps Deps) validate.Errors {
	_, errs := k.parse(cfg, deps)
	return errs
}

func (k kind[C]) New(cfg json.RawMessage, deps Deps) (Sender, error) {
	deps.CheckURL = nil
	c, errs := k.parse(cfg, deps)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return k.newSender(c, deps), nil
}

// Package wiretest holds what the Go tests need to read the CRIU request a recording criu
// saved: a protobuf decoder for the few wire types the request uses, and the README's map
// from option names to criu_opts field numbers. Tests only; nothing here is API.
package wiretest

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
)

// Fields decodes one protobuf message: its varint fields and its length-delimited ones, by
// field number. Fixed-width fields are skipped.
func Fields(b []byte) (map[int]uint64, map[int][]byte, error) {
	vs, subs := map[int]uint64{}, map[int][]byte{}
	truncated := errors.New("truncated message")
	uvarint := func() (uint64, error) {
		var v uint64
		for s := uint(0); len(b) > 0; s += 7 {
			c := b[0]
			b = b[1:]
			v |= uint64(c&0x7f) << s
			if c < 0x80 {
				return v, nil
			}
		}
		return 0, truncated
	}
	skip := func(n uint64) error {
		if uint64(len(b)) < n {
			return truncated
		}
		b = b[n:]
		return nil
	}
	for len(b) > 0 {
		key, err := uvarint()
		if err != nil {
			return nil, nil, err
		}
		num := int(key >> 3)
		switch key & 7 {
		case 0:
			if vs[num], err = uvarint(); err != nil {
				return nil, nil, err
			}
		case 1:
			err = skip(8)
		case 2:
			var l uint64
			if l, err = uvarint(); err == nil && uint64(len(b)) >= l {
				subs[num] = b[:l]
			}
			if err == nil {
				err = skip(l)
			}
		case 5:
			err = skip(4)
		default:
			err = fmt.Errorf("wire type %d", key&7)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return vs, subs, nil
}

// RequestOpts decodes a recorded criu_req and returns the varint fields of its criu_opts
// (field 2).
func RequestOpts(req []byte) (map[int]uint64, error) {
	_, subs, err := Fields(req)
	if err != nil {
		return nil, err
	}
	opts, _, err := Fields(subs[2])
	return opts, err
}

// CriuOptsFields maps each Go Options field to its criu_opts field number, from the option
// table of the README at readme (which tests/options_coverage.rs checks against CRIU's
// rpc.proto).
func CriuOptsFields(readme string) (map[string]int, error) {
	text, err := os.ReadFile(readme)
	if err != nil {
		return nil, err
	}
	row := regexp.MustCompile("(?m)^\\| (\\d+) \\| `\\w+` \\| [^|]*`ckpt_opts_set_\\w+`[^|]* \\| `(\\w+)` \\|")
	m := map[string]int{}
	for _, r := range row.FindAllStringSubmatch(string(text), -1) {
		n, _ := strconv.Atoi(r[1])
		m[r[2]] = n
	}
	return m, nil
}

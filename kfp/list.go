package kfp

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
)

// ListOptions page and filter a list call. The server's default page size
// is 20 and it clamps to 200; the default order is by id, so "latest" must
// be asked for with SortBy "created_at desc".
type ListOptions struct {
	PageSize  int
	PageToken string
	// SortBy is "field", "field asc" or "field desc".
	SortBy string
	Filter *Filter
}

// Filter is the v2beta1 filter message, sent JSON-encoded in the query.
type Filter struct {
	Predicates []Predicate `json:"predicates"`
}

// Predicate is one condition of a Filter. Only string values are used by
// this client.
type Predicate struct {
	Key string `json:"key"`
	// Operation is EQUALS, NOT_EQUALS, IS_SUBSTRING, ...
	Operation   string `json:"operation"`
	StringValue string `json:"string_value,omitempty"`
}

// Equals is a filter with one predicate: key EQUALS value.
func Equals(key, value string) *Filter {
	return &Filter{Predicates: []Predicate{{Key: key, Operation: "EQUALS", StringValue: value}}}
}

// query writes the options as query parameters.
func (o ListOptions) query(q url.Values) (url.Values, error) {
	if q == nil {
		q = url.Values{}
	}
	if o.PageSize > 0 {
		q.Set("page_size", strconv.Itoa(o.PageSize))
	}
	if o.PageToken != "" {
		q.Set("page_token", o.PageToken)
	}
	if o.SortBy != "" {
		q.Set("sort_by", o.SortBy)
	}
	if o.Filter != nil {
		f, err := encodeFilter(o.Filter)
		if err != nil {
			return nil, err
		}
		q.Set("filter", f)
	}
	return q, nil
}

// encodeFilter serialises a filter for the query. The server URL-unescapes
// the filter a second time after the normal query decoding (docs/kfp-api.md §0),
// which mangles a literal "+" or "%"; such a filter is escaped once more so
// that the second unescaping restores it. Filters without those characters
// are sent as they are, which every server reads the same way.
func encodeFilter(f *Filter) (string, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	s := string(b)
	if strings.ContainsAny(s, "+%") {
		s = url.QueryEscape(s)
	}
	return s, nil
}

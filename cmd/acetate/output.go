package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"text/tabwriter"
)

// table is output that renders as aligned columns or as JSON.
type table struct {
	header []string
	rows   [][]string
}

// render writes v as JSON when --format json, else the table t. Every
// empty list in v is written as [], never null, so that jq '.list[]' works
// on an empty result.
func (a *app) render(v any, t table) error {
	if a.format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // "a>b", not "a\u003eb": not for a web page
		return enc.Encode(emptyLists(v))
	}
	return t.write(a.stdout)
}

// emptyLists returns v with every nil slice it reaches (through exported
// struct fields, pointers, interfaces, slice, array and map elements)
// replaced by an empty one. Values behind pointers are changed in place:
// render is the last use of them.
func emptyLists(v any) any {
	if v == nil {
		return v
	}
	rv := reflect.ValueOf(v)
	cp := reflect.New(rv.Type()).Elem()
	cp.Set(rv)
	fillLists(cp)
	return cp.Interface()
}

// fillLists sets the nil slices reachable from the settable value v to
// empty ones. A []byte is left alone: JSON writes it as a string.
func fillLists(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			fillLists(v.Elem())
		}
	case reflect.Interface:
		if !v.IsNil() {
			v.Set(reflect.ValueOf(emptyLists(v.Elem().Interface())))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillLists(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		}
		for i := range v.Len() {
			fillLists(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			fillLists(v.Index(i))
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			e := reflect.New(iter.Value().Type()).Elem()
			e.Set(iter.Value())
			fillLists(e)
			v.SetMapIndex(iter.Key(), e)
		}
	}
}

func (t table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, h := range t.header {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, h)
	}
	fmt.Fprintln(tw)
	for _, r := range t.rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// humanBytes formats n as docker does: 1.5MB, 312kB.
func humanBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

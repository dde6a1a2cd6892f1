package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sagabridge/sagabridge/bridge"
	"github.com/sagabridge/sagabridge/bridge/config"
)

// validation is `validate -o json|yaml`.
type validation struct {
	File   string   `json:"file"`
	OK     bool     `json:"ok"`
	Routes int      `json:"routes"`
	Errors []string `json:"errors,omitempty"`
}

func newValidateCmd() *cobra.Command {
	var file, output string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file: unknown keys, CEL errors, unknown workflows, duplicate routes, access policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			cfg, err := config.Load(file)
			if cfg != nil {
				// Report the routes' and sagas' problems beside the
				// structural ones.
				err = errors.Join(err, bridge.Validate(cfg, bridge.Options{}))
			}
			if output != "table" {
				v := validation{File: file, OK: err == nil}
				if cfg != nil {
					v.Routes = len(cfg.Routes)
				}
				for _, e := range flatten(err) {
					v.Errors = append(v.Errors, e.Error())
				}
				if perr := printAs(cmd.OutOrStdout(), output, v); perr != nil {
					return perr
				}
			}
			if err != nil {
				return exitError{exitUsage, err}
			}
			if output == "table" {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d routes\n", file, len(cfg.Routes))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "bridge.yaml", "config file")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}

// flatten lists the errors errors.Join put together, depth first.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

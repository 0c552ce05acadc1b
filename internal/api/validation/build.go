package validation

import (
	"fmt"

	"slipway.dev/slipway/internal/api"
)

func (v *validator) build(b *api.Build) {
	s := &b.Spec
	if s.App == "" {
		v.required("spec.app", "")
	} else {
		v.label("spec.app", s.App, api.MaxAppNameLength, "it names an App")
	}
	v.min("spec.number", s.Number, 1)
	if s.App != "" && s.Number >= 1 && b.Metadata.Name != "" && b.Metadata.Name != api.BuildName(s.App, s.Number) {
		v.invalid("metadata.name", b.Metadata.Name, fmt.Sprintf("must be %q: a build is named <spec.app>-<spec.number>", api.BuildName(s.App, s.Number)))
	}
	if v.oneOf("spec.source.type", s.Source.Type, api.BuildSourceDir, api.BuildSourceDockerfile, api.BuildSourceBinary) {
		if s.Source.Type == api.BuildSourceDockerfile {
			if s.Source.Dockerfile == "" {
				v.required("spec.source.dockerfile", "a Dockerfile source needs its text")
			}
			v.maxLen("spec.source.dockerfile", s.Source.Dockerfile, api.MaxInlineDockerfileBytes)
		} else if s.Source.Dockerfile != "" {
			v.forbidden("spec.source.dockerfile", fmt.Sprintf("may only be set when spec.source.type is %q", api.BuildSourceDockerfile))
		}
	}
	v.min("spec.source.archiveBytes", s.Source.ArchiveBytes, 0)
	if s.Strategy.Type != "" {
		v.oneOf("spec.strategy.type", s.Strategy.Type, api.BuildDocker, api.BuildGo, api.BuildDirectory)
	}
	if s.Source.Type == api.BuildSourceDockerfile && s.Strategy.Type != "" && s.Strategy.Type != api.BuildDocker {
		v.invalid("spec.strategy.type", s.Strategy.Type, fmt.Sprintf("must be %q (or empty) for a Dockerfile source", api.BuildDocker))
	}
}

func (v *validator) imageStream(s *api.ImageStream) {
	if s.Spec.HistoryLimit != nil {
		v.rangeOf("spec.historyLimit", int64(*s.Spec.HistoryLimit), 1, api.MaxImageHistoryLimit)
	}
}

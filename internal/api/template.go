package api

import "encoding/json"

// Template is a parameterised list of objects, OpenShift v3's template:
// processing it (internal/template) substitutes ${NAME} inside strings and
// ${{NAME}} for a whole value (an integer replicas), gives every object the
// top-level labels, and yields objects to apply. Templates of the project
// CatalogProject are the platform's catalog, readable from every project.
type Template struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	// Message is printed after the template is instantiated (where to
	// open the app, which Secret holds the credentials); it may use
	// parameters like any string.
	Message    string              `json:"message,omitempty"`
	Parameters []TemplateParameter `json:"parameters,omitempty"`
	// Objects are kept as written: a field such as replicas may hold
	// "${{REPLICAS}}", which only processing turns into an integer.
	Objects []json.RawMessage `json:"objects"`
	// Labels are added to every object the template makes.
	Labels map[string]string `json:"labels,omitempty"`
}

// GetMeta implements Object.
func (o *Template) GetMeta() *ObjectMeta { return &o.Metadata }

// TemplateParameter is one ${NAME} of a template: a value given when it is
// processed, its default Value, or one generated From an expression.
type TemplateParameter struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName,omitempty"`
	Description string `json:"description,omitempty"`
	Value       string `json:"value,omitempty"`
	// Generate is "expression" (the only generator) with From such as
	// "[a-zA-Z0-9]{16}".
	Generate string `json:"generate,omitempty"`
	From     string `json:"from,omitempty"`
	Required bool   `json:"required,omitempty"`
}

// GenerateExpression is the one generator of a template parameter.
const GenerateExpression = "expression"

// CatalogProject holds the templates Slipway ships: installed at start,
// upgraded with Slipway, read by every project, written by nobody else.
const CatalogProject = "catalog"

// LabelTemplateInstance marks the objects a TemplateInstance made; its
// value is the instance's name.
const LabelTemplateInstance = "slipway.dev/template-instance"

// TemplateInstance records one instantiation of a Template in a project:
// which template, the Secret holding every parameter's value (those given
// and those generated, so that applying the instance again never
// generates a password anew) and, in status, the objects it made.
type TemplateInstance struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta             `json:"metadata"`
	Spec     TemplateInstanceSpec   `json:"spec"`
	Status   TemplateInstanceStatus `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *TemplateInstance) GetMeta() *ObjectMeta { return &o.Metadata }

// TemplateInstanceSpec names the template and the parameters' Secret.
type TemplateInstanceSpec struct {
	Template string `json:"template"`
	// TemplateProject is where the template was found: the instance's
	// own project or CatalogProject.
	TemplateProject string `json:"templateProject,omitempty"`
	// SecretName is the Secret (in the instance's project) holding the
	// value of every parameter, one key per parameter name.
	SecretName string `json:"secretName"`
}

// TemplateInstanceStatus is written when the instance is applied.
type TemplateInstanceStatus struct {
	// TemplateUID and TemplateResourceVersion name the template's version
	// last applied.
	TemplateUID             string                      `json:"templateUID,omitempty"`
	TemplateResourceVersion int64                       `json:"templateResourceVersion,omitempty"`
	Parameters              []TemplateInstanceParameter `json:"parameters,omitempty"`
	Objects                 []ObjectReference           `json:"objects,omitempty"`
	Conditions              []Condition                 `json:"conditions,omitempty"`
}

// TemplateInstanceParameter says how a parameter got its value (never
// the value: that is in the Secret).
type TemplateInstanceParameter struct {
	Name string `json:"name"`
	// Source is Given (-p or a parameter file), Default (the template's
	// value), Generated or Kept (from the Secret, a previous apply).
	Source string `json:"source"`
}

// Sources of a TemplateInstanceParameter's value.
const (
	ParamGiven     = "Given"
	ParamDefault   = "Default"
	ParamGenerated = "Generated"
	ParamKept      = "Kept"
)

// TemplateInstanceReady is the condition an applied instance carries.
const TemplateInstanceReady = "Ready"

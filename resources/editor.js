/**
 * Editor code shared by the node dialogs of node-red-contrib-trading-broker.
 *
 * Load it, and the request rules generated from the zod schemas, before the node's own script:
 *
 *   <script src="resources/node-red-contrib-trading-broker/schema-limits.js"></script>
 *   <script src="resources/node-red-contrib-trading-broker/editor.js"></script>
 *
 * Node-RED serves the package's resources/ folder there, loads both files before it runs the
 * node's inline script, in no fixed order, and again for every node html that names them. So this
 * file defines its API once, and reads window.TradingBrokerSchema only when a function is called.
 *
 * window.TradingBrokerEditor:
 *   i18n(dir, type)             t(key, substitutions): RED._ in the node's catalogue (its
 *                               locales/<lang>/<dir>.json, under the key <type>).
 *   enumOf(name)                an enum of lib/protocol, e.g. enumOf("Exchange") → ["NSE", …].
 *   EVALUATED                   the TypedInput types Node-RED evaluates per message.
 *   optionType(t, name, values) a TypedInput type that picks one of `values`; its blank entry
 *                               (t("label.from-payload")) leaves the field to msg.payload.
 *   typedDefaults(request, fields)
 *                               the registerType `defaults` entries of TypedInput fields. `fields`
 *                               is a list of { prop, field, types, fixable, validate }: `prop` the
 *                               node property, `field` the request field (rules in the generated
 *                               file under fields[request][field]), `types` the TypedInput types
 *                               before EVALUATED (the first is the default), `fixable` adds
 *                               `<prop>Fixed` (the lock: msg.payload may not change the field),
 *                               `validate(value, opt)` an extra check run with the node as `this`.
 *                               Gives prop (validated), `<prop>Type` and maybe `<prop>Fixed`.
 *   prepareTypedInputs(node, t, fields)
 *                               for oneditprepare: makes each #node-input-<prop> a TypedInput and
 *                               adds the lock beside fixable ones (t("label.fixed") as its tip).
 *   checkField(request, field, value, type)
 *                               true, or "<field>: <rule>" in the runtime's words, for a value the
 *                               dialog holds as text; types evaluated at run time always pass.
 *   current(node, prop)         the form's value while the dialog is open, else the stored one.
 *   literalNumber(node, prop, value)
 *                               whether `value` is a number typed in the dialog (type num).
 *   registerNode(type, t, spec) RED.nodes.registerType for a node of the pack: category trading,
 *                               its colour, one input and one output, the name and broker
 *                               properties, and palette, node, input and output labels from the
 *                               catalogue (t("paletteLabel"), t("inputLabel"), t("outputLabel")).
 *                               `spec` adds to or replaces any of them; `spec.defaults` joins the
 *                               name and broker; `spec.typed` is a list of [request, fields] whose
 *                               typedDefaults it adds and whose TypedInputs it prepares before
 *                               `spec.oneditprepare` runs.
 *
 * And one behaviour, for any dialog: a <select multiple data-trading-toggle> picks and drops its
 * options with a plain click (a native multi-select keeps more than one only with ctrl-click).
 */
(function () {
  "use strict";
  if (window.TradingBrokerEditor !== undefined) return;

  var MODULE = "node-red-contrib-trading-broker";
  var EVALUATED = ["msg", "flow", "global", "env", "jsonata"];
  // What the runtime coerces to a number when a str or env field holds numeric text (coerce.ts).
  var NUMERIC_TEXT = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

  function schema() {
    if (window.TradingBrokerSchema === undefined) {
      throw new Error(MODULE + ": resources/schema-limits.js is not loaded");
    }
    return window.TradingBrokerSchema;
  }

  function i18n(dir, type) {
    var prefix = MODULE + "/" + dir + ":" + type + ".";
    return function t(key, substitutions) {
      return RED._(prefix + key, substitutions);
    };
  }

  function enumOf(name) {
    var values = schema().enums[name];
    if (values === undefined) throw new Error(MODULE + ": no enum " + name);
    return values.slice();
  }

  function optionType(t, name, values) {
    return {
      value: name,
      label: name,
      options: [{ value: "", label: t("label.from-payload") }].concat(values),
    };
  }

  function rulesOf(request, field) {
    var fields = schema().fields[request];
    var rules = fields === undefined ? undefined : fields[field];
    if (rules === undefined) throw new Error(MODULE + ": no rules for " + request + "." + field);
    return rules;
  }

  function isBlank(value) {
    return value === undefined || value === null || String(value).trim() === "";
  }

  function numberRule(rules, number) {
    if (!Number.isFinite(number)) return "type";
    // zod's int() is a safe integer: 2^53 and beyond are "not a whole number" there too.
    if (rules.type === "integer" && !Number.isSafeInteger(number)) return "integer";
    if (rules.exclusiveMinimum !== undefined && !(number > rules.exclusiveMinimum)) return "exclusiveMinimum";
    if (rules.minimum !== undefined && !(number >= rules.minimum)) return "minimum";
    if (rules.maximum !== undefined && !(number <= rules.maximum)) return "maximum";
    return undefined;
  }

  function stringRule(rules, text) {
    if (rules.enum !== undefined && rules.enum.indexOf(text) < 0) return "enum";
    var trimmed = rules.trim ? text.trim() : text;
    if (rules.minLength !== undefined && trimmed.length < rules.minLength) return "minLength";
    if (rules.maxLength !== undefined && trimmed.length > rules.maxLength) return "maxLength";
    if (rules.pattern !== undefined && !new RegExp(rules.pattern).test(trimmed)) return "pattern";
    return undefined;
  }

  function checkField(request, field, value, type) {
    if (isBlank(value) || EVALUATED.indexOf(type) >= 0) return true;
    var rules = rulesOf(request, field);
    var numeric = rules.type === "number" || rules.type === "integer";
    var broken;
    if (numeric && (type === "num" || (type === "str" && NUMERIC_TEXT.test(String(value))))) {
      broken = numberRule(rules, Number(value));
    } else if (numeric && type === "str") {
      broken = "type";
    } else if (rules.type === "string" && type !== "json" && type !== "bool" && type !== "date") {
      broken = stringRule(rules, String(value));
    }
    return broken === undefined ? true : field + ": " + rules.messages[broken];
  }

  function current(node, prop) {
    var input = $("#node-input-" + prop);
    return input.length ? input.val() : node[prop];
  }

  function literalNumber(node, prop, value) {
    return current(node, prop + "Type") === "num" && !isBlank(value);
  }

  function typeOf(spec) {
    var first = spec.types[0];
    return typeof first === "string" ? first : first.value;
  }

  function validatorFor(request, spec) {
    var typed = RED.validators.typedInput({ typeField: spec.prop + "Type", allowBlank: true });
    return function (value, opt) {
      var base = typed.call(this, value, opt);
      if (base !== true) return base;
      var checked = checkField(request, spec.field, value, current(this, spec.prop + "Type"));
      if (checked !== true) return checked;
      return spec.validate === undefined ? true : spec.validate.call(this, value, opt);
    };
  }

  function typedDefaults(request, fields) {
    var defaults = {};
    fields.forEach(function (spec) {
      defaults[spec.prop] = { value: "", validate: validatorFor(request, spec) };
      defaults[spec.prop + "Type"] = { value: typeOf(spec) };
      if (spec.fixable) defaults[spec.prop + "Fixed"] = { value: false };
    });
    return defaults;
  }

  /** The lock beside a field: a checkbox Node-RED saves as <prop>Fixed, shown as a padlock. */
  function addLock(node, t, prop) {
    var id = "node-input-" + prop + "Fixed";
    if ($("#" + id).length) return;
    var box = $('<input type="checkbox">').attr("id", id).css({ width: "auto", margin: "0 4px 0 0" });
    box.prop("checked", node[prop + "Fixed"] === true || node[prop + "Fixed"] === "true");
    var icon = $("<i>");
    function show() {
      var fixed = box.prop("checked");
      icon.attr("class", fixed ? "fa fa-lock" : "fa fa-unlock-alt");
      lock.attr("title", t(fixed ? "label.fixed" : "label.overridable"));
    }
    var lock = $('<label class="trading-broker-lock">')
      .css({ width: "auto", marginLeft: "8px", cursor: "pointer" })
      .append(box, icon);
    box.on("change", show);
    show();
    $("#node-input-" + prop)
      .closest(".form-row")
      .append(lock);
  }

  function prepareTypedInputs(node, t, fields) {
    fields.forEach(function (spec) {
      var input = $("#node-input-" + spec.prop);
      if (spec.fixable) input.css("width", "calc(70% - 40px)");
      input.typedInput({
        default: typeOf(spec),
        typeField: "#node-input-" + spec.prop + "Type",
        types: spec.types.concat(EVALUATED),
      });
      if (spec.fixable) addLock(node, t, spec.prop);
    });
  }

  function registerNode(type, t, spec) {
    var typed = spec.typed || [];
    var defaults = { name: { value: "" }, broker: { value: "", type: "trading-broker", required: true } };
    typed.forEach(function (entry) {
      $.extend(defaults, typedDefaults(entry[0], entry[1]));
    });
    var definition = {
      category: "trading",
      color: "#6CC0A8",
      inputs: 1,
      outputs: 1,
      paletteLabel: function () {
        return t("paletteLabel");
      },
      label: function () {
        return this.name || t("paletteLabel");
      },
      inputLabels: function () {
        return t("inputLabel");
      },
      outputLabels: function () {
        return t("outputLabel");
      },
    };
    Object.keys(spec).forEach(function (key) {
      if (key !== "typed" && key !== "defaults") definition[key] = spec[key];
    });
    definition.defaults = $.extend(defaults, spec.defaults);
    if (definition.inputs === 0) delete definition.inputLabels;
    if (typed.length > 0) {
      definition.oneditprepare = function () {
        var node = this;
        typed.forEach(function (entry) {
          prepareTypedInputs(node, t, entry[1]);
        });
        if (spec.oneditprepare !== undefined) spec.oneditprepare.call(node);
      };
    }
    RED.nodes.registerType(type, definition);
  }

  // Delegated, so it serves every dialog opened later; registered once, with the API.
  $(document).on("mousedown", "select[multiple][data-trading-toggle] > option", function (event) {
    event.preventDefault();
    var select = this.parentNode;
    var scroll = select.scrollTop;
    this.selected = !this.selected;
    $(select).trigger("change").trigger("focus");
    // Focusing scrolls the list back to its first selected option: keep it where the click was.
    select.scrollTop = scroll;
  });

  window.TradingBrokerEditor = {
    i18n: i18n,
    enumOf: enumOf,
    EVALUATED: EVALUATED.slice(),
    optionType: optionType,
    typedDefaults: typedDefaults,
    prepareTypedInputs: prepareTypedInputs,
    checkField: checkField,
    current: current,
    literalNumber: literalNumber,
    registerNode: registerNode,
  };
})();

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
 *   requestFields(t, props, more)
 *                               the `fields` specs of request fields by node property (symbol,
 *                               quantity, orderType…): request field, types, icon and lock in one
 *                               table; `more[prop]` adds a `validate` or narrows an enum (`only`).
 *   prepareTypedInputs(node, t, fields)
 *                               for oneditprepare: makes each #node-input-<prop> a TypedInput and
 *                               adds the lock beside fixable ones (t("label.fixed") as its tip).
 *   checkField(request, field, value, type)
 *                               true, or "<field>: <rule>" in the runtime's words, for a value the
 *                               dialog holds as text; types evaluated at run time always pass.
 *   validSymbolList(value)      whether a list such as "INFY, BSE:TCS" is one the runtime takes
 *                               (quotes' and order-events' symbols).
 *   symbolsRow(t)               their `symbols` row, validated so, with t("validation.symbols").
 *   current(node, prop)         the form's value while the dialog is open, else the stored one.
 *   literalNumber(node, prop, value)
 *                               whether `value` is a number typed in the dialog (type num).
 *   rowsHtml(prefix, ns, rows)  the markup of dialog rows described by a table, one entry a row:
 *                               { id, icon, label, input, … } (see rowHtml below); `prefix` is
 *                               "node-input" or "node-config-input", `ns` the catalogue key of the
 *                               type ("trading-gtt"), under which labels are looked up.
 *   fillTemplate(type, prefix, groups)
 *                               replaces each <div data-trading-rows="<group>"></div> in the
 *                               type's dialog template with rowsHtml of groups[group]. Run when the
 *                               node's script loads: Node-RED copies the template at each open.
 *   defaultsOf(rows)            the registerType `defaults` of the rows that carry a `value`
 *                               (and maybe `validate`, `required`): the table is their one place.
 *   registerNode(type, t, spec) RED.nodes.registerType for a node of the pack: category trading,
 *                               its colour, one input and one output, the name and broker
 *                               properties, and palette, node, input and output labels from the
 *                               catalogue (t("paletteLabel"), t("inputLabel"), t("outputLabel")).
 *                               `spec` adds to or replaces any of them; `spec.defaults` joins the
 *                               name and broker; `spec.typed` is a list of [request, fields] whose
 *                               typedDefaults it adds and whose TypedInputs it prepares before
 *                               `spec.oneditprepare` runs. `spec.form`, a list of rows, writes the
 *                               dialog: the broker row, these rows, the name row; a row may be a
 *                               typed field (it has `prop`), shown as a TypedInput with its `icon`,
 *                               and rows with a `value` join the defaults.
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

  /**
   * A symbol list as nodes/shared/symbols.ts parses it at run time: entries separated by commas or
   * spaces, each a symbol, optionally prefixed by a known exchange ("INFY, BSE:TCS").
   */
  function validSymbolList(value) {
    var entries = String(value || "")
      .split(/[\s,]+/)
      .filter(function (entry) {
        return entry !== "";
      });
    return entries.every(function (entry) {
      if (checkField("order", "symbol", entry, "str") !== true) return false;
      var colon = entry.indexOf(":");
      if (colon < 0) return true;
      return enumOf("Exchange").indexOf(entry.slice(0, colon)) >= 0 && entry.slice(colon + 1) !== "";
    });
  }

  /** The symbols row of quotes and order-events: a list checked as the runtime parses it. */
  function symbolsRow(t) {
    return {
      id: "symbols",
      icon: "tags",
      placeholderKey: "placeholder.symbols",
      value: "",
      validate: function (value, _opt) {
        return validSymbolList(value) ? true : t("validation.symbols");
      },
    };
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

  // #region dialog rows from a table

  var CHECKBOX_STYLE = "display: inline-block; width: auto; vertical-align: top";

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/"/g, "&quot;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;");
  }

  /** ` name="value"` for each entry, in order; true gives a bare attribute, null or false none. */
  function attributes(list) {
    return list
      .filter(function (pair) {
        return pair[1] !== undefined && pair[1] !== null && pair[1] !== false;
      })
      .map(function (pair) {
        return pair[1] === true ? " " + pair[0] : " " + pair[0] + '="' + escapeHtml(pair[1]) + '"';
      })
      .join("");
  }

  function widthOf(width) {
    return width === undefined ? undefined : "width: " + width;
  }

  function optionsHtml(ns, options) {
    return options
      .map(function (option) {
        // [value] shows the value itself; [value, key] the catalogue's text under ns.key.
        var text = option.length > 1 ? "" : escapeHtml(option[0]);
        var i18n = option.length > 1 ? ns + "." + option[1] : undefined;
        return (
          "<option" +
          attributes([
            ["value", option[0]],
            ["data-i18n", i18n],
          ]) +
          ">" +
          text +
          "</option>"
        );
      })
      .join("");
  }

  function inputHtml(prefix, ns, row) {
    var id = prefix + "-" + row.id;
    var style = widthOf(row.width);
    if (row.input === "select") {
      return (
        "<select" +
        attributes([
          ["id", id],
          ["multiple", row.multiple === true],
          ["data-trading-toggle", row.multiple === true],
          ["size", row.size],
          ["style", style || "width: 70%"],
        ]) +
        ">" +
        optionsHtml(ns, row.options || []) +
        "</select>"
      );
    }
    if (row.input === "checkbox") {
      return (
        "<input" +
        attributes([
          ["type", "checkbox"],
          ["id", id],
          ["style", CHECKBOX_STYLE],
        ]) +
        " />"
      );
    }
    if (row.input === "password") {
      return (
        "<input" +
        attributes([
          ["type", "password"],
          ["id", id],
          ["autocomplete", "off"],
        ]) +
        " />"
      );
    }
    if (row.input === "typed") {
      return (
        "<input" +
        attributes([
          ["type", "text"],
          ["id", id],
          ["style", "width: 70%"],
        ]) +
        " />\n<input" +
        attributes([
          ["type", "hidden"],
          ["id", id + "Type"],
        ]) +
        " />"
      );
    }
    return (
      "<input" +
      attributes([
        ["type", "text"],
        ["id", id],
        ["placeholder", row.placeholder],
        [
          "data-i18n",
          row.placeholderKey === undefined || row.placeholderKey === null
            ? undefined
            : "[placeholder]" + ns + "." + row.placeholderKey,
        ],
        ["data-placeholder-kite", row.kitePlaceholder],
        ["style", style],
      ]) +
      " />"
    );
  }

  /**
   * One row. `id` the property (the element is <prefix>-<id>); `label` its catalogue key under ns
   * (default "label.<id>"); `icon` a Font Awesome name; `input` text (default), password, checkbox,
   * select (`options` [[value], [value, key]…], `multiple`, `size`) or typed; `after` puts a
   * checkbox's label after it; text inputs take `placeholder`, `placeholderKey`, `kitePlaceholder`;
   * `width` and `labelWidth` size them; `cls` adds classes to the row. Not fields: { group, icon }
   * a section heading, { tip, html } a form tip.
   */
  function rowHtml(prefix, ns, row) {
    if (row.prop !== undefined) row = { id: row.prop, icon: row.icon, input: "typed" };
    var icon = row.icon === undefined ? "" : '<i class="fa fa-' + row.icon + '"></i> ';
    if (row.tip !== undefined) {
      var tip = (row.html ? "[html]" : "") + ns + "." + row.tip;
      return (
        "<div" +
        attributes([
          ["class", "form-tips"],
          ["data-i18n", tip],
          ["style", row.style],
        ]) +
        "></div>"
      );
    }
    if (row.group !== undefined) {
      return (
        '<div class="form-row trading-broker-group" style="margin-bottom: 4px"><label style="width: auto">' +
        icon +
        '<b data-i18n="' +
        ns +
        ".label." +
        row.group +
        '"></b></label></div>'
      );
    }
    var id = prefix + "-" + row.id;
    var label = ns + "." + (row.label || "label." + row.id);
    var body;
    if (row.after) {
      body =
        "<label>&nbsp;</label>\n" +
        inputHtml(prefix, ns, row) +
        "\n<label" +
        attributes([
          ["for", id],
          ["style", "width: auto"],
          ["data-i18n", label],
        ]) +
        "></label>";
    } else {
      body =
        "<label" +
        attributes([
          ["for", id],
          ["style", widthOf(row.labelWidth)],
        ]) +
        ">" +
        icon +
        '<span data-i18n="' +
        label +
        '"></span></label>\n' +
        inputHtml(prefix, ns, row);
    }
    return (
      '<div class="' + (row.cls === undefined ? "form-row" : "form-row " + row.cls) + '">' + body + "</div>"
    );
  }

  function rowsHtml(prefix, ns, rows) {
    return rows
      .map(function (row) {
        return rowHtml(prefix, ns, row);
      })
      .join("\n");
  }

  /** The dialog template of `type`; absent (length 0) where no editor page holds it. */
  function templateOf(type) {
    return $('script[data-template-name="' + type + '"]');
  }

  function fillTemplate(type, prefix, groups) {
    var template = templateOf(type);
    if (!template.length) return;
    var text = template.text().replace(/<div data-trading-rows="([\w-]+)"><\/div>/g, function (_all, group) {
      if (groups[group] === undefined) throw new Error(MODULE + ": " + type + " has no rows " + group);
      return rowsHtml(prefix, type, groups[group]);
    });
    template.text(text);
  }

  /**
   * Node-RED takes a returned string as the reason a value is invalid only from a validator that
   * declares two parameters (value, opt); from a one-parameter one any string counts as valid.
   */
  function twoParameters(validate) {
    if (validate.length === 2) return validate;
    return function (value, opt) {
      return validate.call(this, value, opt);
    };
  }

  function defaultsOf(rows) {
    var defaults = {};
    rows.forEach(function (row) {
      if (row.id === undefined || !Object.prototype.hasOwnProperty.call(row, "value")) return;
      var entry = { value: row.value };
      if (row.validate !== undefined) entry.validate = twoParameters(row.validate);
      if (row.required !== undefined) entry.required = row.required;
      defaults[row.id] = entry;
    });
    return defaults;
  }

  var BROKER_ROW = { id: "broker", icon: "plug" };
  var NAME_ROW = { id: "name", icon: "tag", placeholderKey: "label.name" };

  // #endregion

  /**
   * The request fields a dialog may set, by node property: the request field it fills, its
   * TypedInput type (an enum gives a pick list), and its row's icon. The nodes pick from here.
   */
  var REQUEST_FIELDS = {
    orderId: { field: "order_id", types: ["str"], icon: "key" },
    gttId: { field: "gtt_id", types: ["str"], icon: "key" },
    symbol: { field: "symbol", types: ["str"], icon: "tag" },
    exchange: { field: "exchange", enumName: "Exchange", icon: "university" },
    side: { field: "side", enumName: "Side", icon: "exchange" },
    quantity: { field: "quantity", types: ["num"], icon: "hashtag" },
    orderType: { field: "order_type", enumName: "OrderType", icon: "list" },
    price: { field: "price", types: ["num"], icon: "inr" },
    triggerPrice: { field: "trigger_price", types: ["num"], icon: "bolt" },
    product: { field: "product", enumName: "Product", icon: "briefcase" },
    validity: { field: "validity", enumName: "Validity", icon: "clock-o" },
    tag: { field: "tag", types: ["str"], icon: "bookmark" },
    variety: { field: "variety", enumName: "Variety", icon: "cubes" },
    validityTtl: { field: "validity_ttl", types: ["num"], icon: "hourglass-half" },
    disclosedQuantity: { field: "disclosed_quantity", types: ["num"], icon: "eye" },
    icebergLegs: { field: "iceberg_legs", types: ["num"], icon: "th-list" },
    icebergQuantity: { field: "iceberg_quantity", types: ["num"], icon: "square-o" },
    // Lists are not lockable: a payload's list is the request's.
    triggerValues: { field: "trigger_values", types: ["json"], icon: "arrows-v", fixable: false },
    orders: { field: "orders", types: ["json"], icon: "list-ol", fixable: false },
  };

  /**
   * The typedDefaults/prepareTypedInputs specs of `props` (keys of REQUEST_FIELDS), fixable unless
   * said otherwise; more[prop] adds to or replaces parts of one (a `validate`, an `only` list that
   * narrows an enum).
   */
  function requestFields(t, props, more) {
    return props.map(function (prop) {
      var known = REQUEST_FIELDS[prop];
      if (known === undefined) throw new Error(MODULE + ": no request field " + prop);
      var extra = (more && more[prop]) || {};
      var spec = { prop: prop, field: known.field, icon: known.icon, fixable: known.fixable !== false };
      var values = known.enumName === undefined ? undefined : enumOf(known.enumName);
      if (values !== undefined && extra.only !== undefined) {
        values = values.filter(function (value) {
          return extra.only.indexOf(value) >= 0;
        });
      }
      spec.types = values === undefined ? known.types : [optionType(t, known.field, values)];
      if (extra.validate !== undefined) spec.validate = extra.validate;
      return spec;
    });
  }

  function registerNode(type, t, spec) {
    var typed = spec.typed || [];
    var defaults = { name: { value: "" }, broker: { value: "", type: "trading-broker", required: true } };
    typed.forEach(function (entry) {
      $.extend(defaults, typedDefaults(entry[0], entry[1]));
    });
    if (spec.form !== undefined) {
      $.extend(defaults, defaultsOf(spec.form));
      var template = templateOf(type);
      if (template.length)
        template.text(rowsHtml("node-input", type, [BROKER_ROW].concat(spec.form, [NAME_ROW])));
    }
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
      if (key !== "typed" && key !== "defaults" && key !== "form") definition[key] = spec[key];
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
    validSymbolList: validSymbolList,
    symbolsRow: symbolsRow,
    current: current,
    literalNumber: literalNumber,
    requestFields: requestFields,
    rowsHtml: rowsHtml,
    fillTemplate: fillTemplate,
    defaultsOf: defaultsOf,
    registerNode: registerNode,
  };
})();

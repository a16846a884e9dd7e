// roofline's 3D building map (inlined by src/render/map.rs after MapLibre GL JS).
// rooflineMap(id) reads the JSON blocks `${id}-meta` and `${id}-data` and draws into element `id`.
// When the map first becomes idle, the element gets data-ready="1" and data-load-ms (time since
// navigation start), which the browser test reads.
function rooflineMap(id) {
  "use strict";
  var el = document.getElementById(id);
  var meta = JSON.parse(document.getElementById(id + "-meta").textContent);
  var data = JSON.parse(document.getElementById(id + "-data").textContent);
  var error = meta.colour === "error";
  // Signed error: blue = predicted too low, red = too high (m). Height: viridis (m).
  var stops = error
    ? [-10, "#2166ac", -5, "#67a9cf", -1.5, "#f2f2f2", 1.5, "#f2f2f2", 5, "#ef8a62", 10, "#b2182b"]
    : [0, "#440154", 5, "#3b528b", 10, "#21918c", 20, "#5ec962", 40, "#fde725"];
  var key = error ? "e" : "h";
  var colour = ["case", ["has", key], ["interpolate", ["linear"], ["get", key]].concat(stops), "#bdbdbd"];
  var first = meta.cities.length ? meta.cities[0].bounds : [-1, -1, 1, 1];
  var map = new maplibregl.Map({
    container: el,
    style: {
      version: 8,
      sources: { b: { type: "geojson", data: data } },
      layers: [
        { id: "background", type: "background", paint: { "background-color": "#f3f1ec" } },
        {
          id: "buildings",
          type: "fill-extrusion",
          source: "b",
          paint: {
            "fill-extrusion-color": colour,
            "fill-extrusion-height": ["coalesce", ["get", "h"], 0],
            "fill-extrusion-opacity": 0.92
          }
        }
      ]
    },
    bounds: first,
    // Opened pitched (fitting the bounds alone looks straight down, where heights are invisible).
    fitBoundsOptions: { padding: 30, pitch: 50 },
    pitch: 50,
    maxPitch: 75,
    attributionControl: false
  });
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }));
  el._map = map;

  function fmt(v) { return v === undefined ? "–" : v.toFixed(1) + " m"; }
  function text(s) {
    var d = document.createElement("div");
    d.textContent = s === undefined ? "" : String(s);
    return d.innerHTML;
  }
  function describe(p) {
    var rows = [["id", text(p.i)], ["city", text(p.c)]];
    if (error) {
      rows.push(["measured", fmt(p.m)], ["predicted", fmt(p.p)], ["error", p.e === undefined ? "–" : (p.e > 0 ? "+" : "") + p.e.toFixed(1) + " m"]);
    } else {
      rows.push(["height", fmt(p.h)]);
    }
    rows.push(["90 % interval", p.lo === undefined ? "–" : p.lo.toFixed(1) + " – " + p.hi.toFixed(1) + " m"]);
    rows.push(["source", text(p.s)], ["ood", p.o === undefined ? "–" : (p.o ? "yes (outside training range)" : "no")]);
    return "<table>" + rows.map(function (r) { return "<tr><th style='text-align:left;padding-right:8px'>" + r[0] + "</th><td>" + r[1] + "</td></tr>"; }).join("") + "</table>";
  }
  var hover = new maplibregl.Popup({ closeButton: false, closeOnClick: false });
  map.on("mousemove", "buildings", function (e) {
    map.getCanvas().style.cursor = "pointer";
    hover.setLngLat(e.lngLat).setHTML(describe(e.features[0].properties)).addTo(map);
  });
  map.on("mouseleave", "buildings", function () {
    map.getCanvas().style.cursor = "";
    hover.remove();
  });
  map.on("click", "buildings", function (e) {
    new maplibregl.Popup().setLngLat(e.lngLat).setHTML(describe(e.features[0].properties)).addTo(map);
  });
  map.on("error", function (e) { console.error("map: " + (e.error && e.error.message ? e.error.message : e)); });
  map.once("idle", function () {
    el.dataset.loadMs = performance.now().toFixed(0);
    el.dataset.ready = "1";
  });

  // Legend and one button per city.
  var legend = document.createElement("div");
  legend.className = "roofline-legend";
  var grad = [];
  for (var k = 0; k < stops.length; k += 2) {
    grad.push(stops[k + 1] + " " + (100 * (stops[k] - stops[0]) / (stops[stops.length - 2] - stops[0])).toFixed(0) + "%");
  }
  legend.innerHTML = (error ? "predicted − measured (m)" : "height (m)") +
    "<div class='bar' style='background:linear-gradient(to right," + grad.join(",") + ")'></div>" +
    "<div class='ticks'><span>" + stops[0] + "</span><span>" + ((stops[0] + stops[stops.length - 2]) / 2) + "</span><span>" + stops[stops.length - 2] + "</span></div>" +
    "<div>" + data.features.length + " buildings; grey: no value</div>";
  el.appendChild(legend);
  if (meta.cities.length > 1) {
    var bar = document.createElement("div");
    bar.className = "roofline-cities";
    meta.cities.forEach(function (c) {
      var b = document.createElement("button");
      b.textContent = c.city;
      b.onclick = function () { map.fitBounds(c.bounds, { padding: 30, pitch: 45 }); };
      bar.appendChild(b);
    });
    el.appendChild(bar);
  }
  return map;
}

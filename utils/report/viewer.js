// The report's 3D viewer: each pair's meshes turned with the mouse, side by side, cameras linked.
// Classic script (no ES modules) so that it runs from a page opened from a folder (file://).
// Lazy: the model-viewer library and a pair's meshes load only when the pair scrolls into view, and a pair's
// views are removed again when it is far out of view, so that scrolling through hundreds of pairs stays light.
(function () {
  "use strict";
  var LIBRARY = "report_files/model-viewer-umd.min.js";
  var waiting = {};  // mesh key -> callback waiting for its base64 data
  var library = null;  // promise of the model-viewer library
  var NOTE = "the 3D view loads when it comes into view";

  // Called by each <mesh>.glb.js script with the .glb file as base64.
  window.rrpsGlbLoaded = function (key, base64) {
    if (waiting[key]) { waiting[key]("data:model/gltf-binary;base64," + base64); delete waiting[key]; }
  };

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = src;
      script.onload = function () { script.remove(); resolve(); };
      script.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(script);
    });
  }

  function loadMesh(key, scriptSrc) {
    return new Promise(function (resolve, reject) {
      waiting[key] = resolve;
      loadScript(scriptSrc).catch(reject);
    });
  }

  function loadLibrary() {
    library = library || loadScript(LIBRARY);
    return library;
  }

  // When one view is turned by the user, the others follow to the same orbit, target and field of view.
  function linkCameras(views) {
    views.forEach(function (view) {
      view.addEventListener("camera-change", function (event) {
        if (event.detail.source !== "user-interaction") return;
        var orbit = view.getCameraOrbit(), target = view.getCameraTarget(), fov = view.getFieldOfView();
        views.forEach(function (other) {
          if (other === view) return;
          other.cameraOrbit = orbit.theta + "rad " + orbit.phi + "rad " + orbit.radius + "m";
          other.cameraTarget = target.x + "m " + target.y + "m " + target.z + "m";
          other.fieldOfView = fov + "deg";
          other.jumpCameraToGoal();
        });
      });
    });
  }

  // The project's renders interpolate a triangle's vertex colours as the sRGB values they are; glTF (and so
  // three.js) interpolates the linear COLOR_0. Where a triangle spans a dark outline and a light patch the two
  // differ (linear is lighter), so each material's shaders are changed to interpolate the colours in sRGB: the
  // vertex shader encodes COLOR_0 to sRGB, the fragment shader decodes the interpolated colour again. It reaches
  // model-viewer's three.js scene through an internal (the element's symbol named "scene"); where that or the
  // shader chunks are not found, the view keeps glTF's interpolation.
  var TO_SRGB = "vec3 rrpsToSrgb(vec3 c) { return mix(c * 12.92, 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055, " +
    "step(0.0031308, c)); }\n";
  var TO_LINEAR = "vec3 rrpsToLinear(vec3 c) { return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), " +
    "step(0.04045, c)); }\n";
  var COLOR_VERTEX = "#include <color_vertex>", COLOR_FRAGMENT = "#include <color_fragment>";

  function interpolateColoursInSrgb(view) {
    var key = Object.getOwnPropertySymbols(view).find(function (symbol) { return symbol.description === "scene"; });
    var scene = key && view[key];
    if (!scene || typeof scene.traverse !== "function") return;
    scene.traverse(function (object) {
      var material = object.material;
      if (!material || !material.vertexColors || material.rrpsSrgbColours) return;
      material.rrpsSrgbColours = true;
      material.onBeforeCompile = function (shader) {
        if (shader.vertexShader.indexOf(COLOR_VERTEX) < 0 || shader.fragmentShader.indexOf(COLOR_FRAGMENT) < 0) return;
        shader.vertexShader = TO_SRGB + shader.vertexShader.replace(COLOR_VERTEX,
          COLOR_VERTEX + "\n\tvColor.rgb = rrpsToSrgb(vColor.rgb);");
        shader.fragmentShader = TO_LINEAR + shader.fragmentShader.replace(COLOR_FRAGMENT,
          "diffuseColor *= vec4(rrpsToLinear(vColor.rgb), vColor.a);");
      };
      material.customProgramCacheKey = function () { return "rrps-srgb-vertex-colours"; };
      material.needsUpdate = true;
    });
    if (typeof scene.queueRender === "function") scene.queueRender();
  }

  function pane(container, mesh, url) {
    var figure = document.createElement("figure");
    var view = document.createElement("model-viewer");
    view.setAttribute("camera-controls", "");
    view.setAttribute("interaction-prompt", "none");
    // The meshes' own colours, as the project's unlit renders show them: the .glb's material is unlit (which
    // model-viewer draws without lights, environment or tone mapping); these keep it so for a lit one too.
    view.setAttribute("tone-mapping", "none");
    view.setAttribute("exposure", "1");
    view.setAttribute("shadow-intensity", "0");
    view.setAttribute("alt", mesh.caption);
    view.addEventListener("load", function () { interpolateColoursInSrgb(view); });
    view.setAttribute("src", url);
    var caption = document.createElement("figcaption");
    caption.textContent = mesh.caption;
    figure.appendChild(view);
    figure.appendChild(caption);
    container.appendChild(figure);
    return view;
  }

  function build(container) {
    var meshes = JSON.parse(container.dataset.meshes);
    container.querySelector(".viewer-note").textContent = "loading the 3D view...";
    container.dataset.state = "loading";
    loadLibrary().then(function () {
      return Promise.all(meshes.map(function (mesh) { return loadMesh(mesh.key, mesh.script); }));
    }).then(function (urls) {
      container.querySelector(".viewer-note").textContent = "drag to turn, scroll to zoom; the views turn together";
      linkCameras(meshes.map(function (mesh, i) { return pane(container, mesh, urls[i]); }));
      container.dataset.state = "shown";
      unloader.observe(container);
    }).catch(function (error) {
      container.querySelector(".viewer-note").textContent = "3D view unavailable (" + error.message +
        "); the turntables below show the meshes";
      container.dataset.state = "failed";
    });
  }

  // Frees a pair's views (and their meshes) and waits for it to come into view again.
  function unload(container) {
    container.querySelectorAll("figure").forEach(function (figure) { figure.remove(); });
    container.querySelector(".viewer-note").textContent = NOTE;
    container.dataset.state = "";
    unloader.unobserve(container);
    loader.observe(container);
  }

  var loader = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      loader.unobserve(entry.target);
      build(entry.target);
    });
  }, {rootMargin: "200px"});
  var unloader = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting && entry.target.dataset.state === "shown") unload(entry.target);
    });
  }, {rootMargin: "1500px"});

  function start() {
    document.querySelectorAll(".viewer3d").forEach(function (container) { loader.observe(container); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

"""Package setup driven by `settings.ini` (nbdev 2 layout)."""
from configparser import ConfigParser
import setuptools, shlex

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['Pre-Alpha', 'Alpha', 'Beta', 'Production/Stable', 'Mature', 'Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
min_python = cfg['min_python']
lic = licenses[cfg['license']]

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: Science/Research',
                 'Natural Language :: ' + cfg['language'],
                 'License :: ' + lic[1]] +
                ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'], packages=setuptools.find_packages(include=['speechface', 'speechface.*']),
    include_package_data=True, install_requires=requirements,
    package_data={'speechface': ['configs/*.yaml', 'configs/*/*.yaml', 'assets/*.json']},
    extras_require={'dev': dev_requirements}, python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': cfg['console_scripts'].split(),
                  'nbdev': [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d']},
    description=cfg['description'], author=cfg['author'], author_email=cfg['author_email'],
    keywords=cfg['keywords'],
)
